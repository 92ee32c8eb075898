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


def test_a_batch_searches_its_proteins_in_one_mmseqs2_run_with_the_a3ms_of_single_runs(kit, full_data_dir, targets,
                                                                                       tmp_path):
    """alphafold-batch --msa-mode mmseqs2: the CPU tasks of a chunk share one MMseqs2 run of all its
    proteins (the databases read once), and each protein's A3M is byte for byte the one alphafold-msa
    --msa-mode mmseqs2 makes for it alone. The CPU stage is under test: with --require-gpu, the GPU
    worker stops at once on this GPU-less machine (no model compiled); the CPU tasks run to the end."""
    hbb, cono = fasta_sequence(targets['hbb_human']), fasta_sequence(targets['conotoxin'])
    proteins = {'cono': cono, 'hbb40': hbb[:40], 'hbb60': hbb[10:70]}
    fasta = tmp_path / 'batch.fasta'
    fasta.write_text(''.join('>%s\n%s\n' % item for item in proteins.items()))
    out = tmp_path / 'batch'
    res = kit('batch', 'submit', '--fasta', fasta, '--output-dir', out, '--data-dir', full_data_dir, '--cpus', '2',
              '--msa-mode', 'mmseqs2', '--no-templates', '--model-preset', 'monomer_ptm', '--models', 'model_1',
              '--num-recycle', '1', '--models-to-relax', 'none', '--no-result-pkl', '--no-plots', '--no-progress',
              '--require-gpu')
    assert res.returncode in (0, 1), res.stdout                                # 1: no GPU to predict with
    assert 'in 1 MMseqs2 run(s) of up to' in res.stdout, res.stdout
    assert json.loads((out / '.batch' / 'batch.json').read_text())['mmseqs_chunks'] == [sorted(proteins)]
    logs = ''.join((out / '.batch' / 'logs' / ('msa-%s.log' % name)).read_text() for name in proteins)
    assert logs.count('colabfold_search: one MMseqs2 run for 3 protein(s)') == 1, logs
    assert logs.count('mmseqs search\n') == 2 and logs.count('mmseqs createdb\n') == 1, logs   # UniRef30, env
    assert 'started: mmseqs' not in logs                                       # no task searched alone

    alone = tmp_path / 'alone'
    paths = []
    for name, sequence in proteins.items():
        paths.append(tmp_path / (name + '.fasta'))
        paths[-1].write_text('>%s\n%s\n' % (name, sequence))
    res = kit('msa', '--fasta', *paths, '--output-dir', alone, '--data-dir', full_data_dir, '--cpus', '2',
              '--msa-mode', 'mmseqs2', '--no-templates')
    assert res.returncode == 0 and res.stdout.count('started: mmseqs') == 3, res.stdout
    for name in proteins:
        batch_a3m = (out / name / 'msas' / 'colabfold.a3m').read_bytes()
        assert batch_a3m == (alone / name / 'msas' / 'colabfold.a3m').read_bytes(), name
        assert batch_a3m.count(b'>') > 1, name                                  # hits, not only the query
        meta = json.loads((out / name / 'features.meta.json').read_text())
        assert meta['msa_mode'] == 'mmseqs2' and meta['colabfold_databases'] == sorted(
            json.loads((alone / name / 'features.meta.json').read_text())['colabfold_databases'])
        assert 'search_colabfold' not in json.loads((out / name / 'timings.json').read_text())
        assert json.loads((out / '.batch' / 'state' / (name + '.msa.json')).read_text())['state'] == 'done'


def test_a_complex_in_mmseqs2_mode_pairs_colabfold_s_a3ms_by_uniprot_species(kit, data_dir, targets, tmp_path):
    """--model-preset multimer --msa-mode mmseqs2: each chain's ColabFold A3M is its unpaired MSA (no
    jackhmmer on UniRef90, no HHblits), UniProt's jackhmmer hits pair the chains as AlphaFold-Multimer
    pairs them, and hmmsearch finds the templates from the A3M; labelled, and no mode switch reuses it."""
    mmseqs2 = ('--model-preset', 'multimer', '--msa-mode', 'mmseqs2', '--feature-cache', tmp_path / 'cache')
    res = msa(kit, data_dir, targets['pim1_epha2'], tmp_path, *mmseqs2)
    assert res.returncode == 0, res.stdout
    assert res.stdout.count('started: mmseqs on') == 2 and 'hhblits' not in res.stdout, res.stdout
    tdir = tmp_path / 'pim1_epha2'
    chains = open(targets['pim1_epha2']).read().split('\n')[1::2]
    for chain_id, sequence in zip('AB', chains):
        msas = tdir / 'msas' / chain_id
        assert sorted(os.listdir(msas)) == ['colabfold.a3m', 'pdb_hits.sto', 'uniprot_hits.sto'], chain_id
        assert (msas / 'colabfold.a3m').read_text().startswith('>101\n%s\n>' % sequence.strip())
    with open(tdir / 'features.pkl', 'rb') as f:
        feats = pickle.load(f)
    msa_rows, asym = feats['msa'][:int(feats['num_alignments'])], feats['asym_id']
    paired = sum(1 for row in msa_rows if (row[asym == 1] != 21).any() and (row[asym == 2] != 21).any())
    only_a = sum(1 for row in msa_rows if (row[asym == 1] != 21).any() and not (row[asym == 2] != 21).any())
    assert paired > 5 and only_a > 5, (paired, only_a)     # pairs by species, and the unpaired A3M rows
    meta = json.loads((tdir / 'features.meta.json').read_text())
    assert meta['msa_mode'] == 'mmseqs2' and meta['model_preset'] == 'multimer'
    res = msa(kit, data_dir, targets['pim1_epha2'], tmp_path, '--model-preset', 'multimer')
    assert res.returncode == 6 and "msa_mode: existing 'mmseqs2', now 'jackhmmer'" in res.stdout, res.stdout
    # The chains' cache entries (a batch of complexes shares chains through one) serve the same complex.
    res = msa(kit, data_dir, targets['pim1_epha2'], tmp_path / 'again', *mmseqs2)
    assert res.returncode == 0 and 'started:' not in res.stdout, res.stdout
    assert res.stdout.count('searches and features from the shared cache') == 2, res.stdout
    assert (tmp_path / 'again' / 'pim1_epha2' / 'features.pkl').read_bytes() == (tdir / 'features.pkl').read_bytes()
