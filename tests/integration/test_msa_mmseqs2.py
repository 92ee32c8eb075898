"""--msa-mode mmseqs2: ColabFold's search with the real MMseqs2 on the test databases in ColabFold's
format (tests/build_test_dbs.py); its features are labelled, and nothing made in one mode is reused
in the other."""
import json
import os
import pickle
import subprocess

from alphafold.common import residue_constants


def fasta_sequence(path):
    return ''.join(open(path).read().split('\n')[1:]).strip()


def msa(kit, data_dir, fasta, out, *extra):
    return kit('msa', '--fasta', fasta, '--output-dir', out, '--data-dir', data_dir, '--cpus', '2', *extra)


def test_mmseqs2_features_come_from_colabfold_s_a3m_and_say_so(kit, data_dir, targets, tmp_path):
    res = msa(kit, data_dir, targets['hbb_human'], tmp_path, '--msa-mode', 'mmseqs2')
    assert res.returncode == 0, res.stdout
    assert 'started: mmseqs on uniref30_2302_db, colabfold_envdb_202108_db' in res.stdout
    assert 'started: jackhmmer' not in res.stdout and 'started: hhblits' not in res.stdout
    tdir = tmp_path / 'hbb_human'
    sequence = fasta_sequence(targets['hbb_human'])
    # ColabFold's merged A3M: the query (named 101, as colabfold_search names it) first, then hits.
    a3m = (tdir / 'msas' / 'colabfold.a3m').read_text()
    assert a3m.startswith('>101\n%s\n>' % sequence)
    with open(tdir / 'features.pkl', 'rb') as f:
        feats = pickle.load(f)
    assert list(feats['msa'][0]) == [residue_constants.HHBLITS_AA_TO_ID[c] for c in sequence]
    assert feats['num_alignments'][0] > 10   # the test databases' globins
    assert (tdir / 'msas' / 'pdb_hits.hhr').exists()   # HHsearch on pdb70, from ColabFold's A3M
    meta = json.loads((tdir / 'features.meta.json').read_text())
    mmseqs_version = subprocess.run(['mmseqs', 'version'], stdout=subprocess.PIPE,
                                    universal_newlines=True).stdout.strip()
    assert meta['msa_mode'] == 'mmseqs2' and meta['tools']['mmseqs'] == mmseqs_version
    assert meta['colabfold_databases'] == ['colabfold_envdb_202108', 'uniref30_2302']
    assert 'colabfold/uniref30_2302_db.index' in meta['databases']
    assert 'uniref90/uniref90.fasta' not in meta['databases'] and 'jackhmmer' not in meta['tools']
    assert json.loads((tdir / 'timings.json').read_text())['search_colabfold'] > 0
    # DeepMind's searches on the same output directory: refused before any search.
    res = msa(kit, data_dir, targets['hbb_human'], tmp_path)
    assert res.returncode == 6 and "msa_mode: existing 'mmseqs2', now 'jackhmmer'" in res.stdout, res.stdout
    assert 'started:' not in res.stdout
    # The GPU stage checks the mode it is told, before any model loads.
    res = kit('predict', '--target-dir', tdir, '--data-dir', data_dir, '--msa-mode', 'jackhmmer')
    assert res.returncode == 6 and "msa_mode: existing 'mmseqs2', now 'jackhmmer'" in res.stdout, res.stdout


def test_features_of_deepmind_s_searches_are_not_taken_for_mmseqs2(kit, data_dir, targets, conotoxin_dir):
    res = msa(kit, data_dir, targets['conotoxin'], conotoxin_dir.parent, '--msa-mode', 'mmseqs2')
    assert res.returncode == 6 and "msa_mode: existing 'jackhmmer', now 'mmseqs2'" in res.stdout, res.stdout
    assert 'started:' not in res.stdout


def test_the_feature_cache_keeps_the_modes_apart(kit, data_dir, targets, tmp_path):
    def run(out, *mode):
        return msa(kit, data_dir, targets['conotoxin'], tmp_path / out, '--no-templates',
                   '--feature-cache', tmp_path / 'cache', *mode)

    assert run('jackhmmer').returncode == 0
    res = run('mmseqs2', '--msa-mode', 'mmseqs2')
    assert res.returncode == 0 and 'shared cache' not in res.stdout and 'started: mmseqs' in res.stdout, res.stdout
    res = run('again', '--msa-mode', 'mmseqs2')
    assert res.returncode == 0 and 'features from the shared cache' in res.stdout, res.stdout
    assert os.listdir(tmp_path / 'again' / 'conotoxin' / 'msas') == ['colabfold.a3m']
    res = run('jackhmmer_again')   # each mode finds its own entry
    assert res.returncode == 0 and 'features from the shared cache' in res.stdout, res.stdout
    for out, mode in (('again', 'mmseqs2'), ('jackhmmer_again', None)):
        assert json.loads((tmp_path / out / 'conotoxin' / 'features.meta.json').read_text()).get('msa_mode') == mode
    assert 'colabfold.a3m' not in os.listdir(tmp_path / 'jackhmmer_again' / 'conotoxin' / 'msas')


def test_missing_colabfold_databases_are_named_before_any_search(kit, data_dir, targets, tmp_path):
    partial = tmp_path / 'data'
    partial.mkdir()
    for name in os.listdir(data_dir):
        if name != 'colabfold':
            os.symlink(os.path.join(data_dir, name), str(partial / name))
    res = msa(kit, partial, targets['conotoxin'], tmp_path / 'out', '--msa-mode', 'mmseqs2')
    assert res.returncode == 3 and 'needed by --msa-mode mmseqs2' in res.stdout, res.stdout
    assert 'setup_databases.sh' in res.stdout and 'Traceback' not in res.stdout
    assert not (tmp_path / 'out' / 'conotoxin').exists()
