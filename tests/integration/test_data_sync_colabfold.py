"""alphafold-data for ColabFold's databases (--msa-mode mmseqs2) against a real HTTP mirror on
127.0.0.1: ColabFold's TSV archives, made here from the test databases with the real MMseqs2 (each
database part as `key<TAB>line` rows, the layout tsv2exprofiledb reads), are downloaded, prepared as
setup_databases.sh does, verified, staged node-local and searched."""
import json
import os
import tarfile

from data_sync import registry
from fold_runtime.cpu_stage import colabfold_search
from kit_common import mmseqs_db
from colabfold_tools import write_tsvs
from servers import HttpServer
from conftest import run_data as data


def colabfold_archive(data_dir, name, mirror_root, work):
    """<mirror>/colabfold/<name>.tar.gz as ColabFold publishes it: <name>.tsv, _h, _seq and _aln.tsv."""
    prefix = os.path.join(data_dir, registry.COLABFOLD_DIR, name + '_db')
    archive = mirror_root / 'colabfold' / (name + '.tar.gz')
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(str(archive), 'w:gz', compresslevel=0) as tar:   # small files: no bomb-sized ratio
        for tsv in write_tsvs(prefix, name, str(work)):
            tar.add(tsv, arcname=os.path.basename(tsv))


def test_colabfold_databases_are_fetched_prepared_verified_staged_and_searched(data_dir, targets, tmp_path):
    mirror = tmp_path / 'mirror'
    for name in registry.COLABFOLD:
        colabfold_archive(data_dir, name, mirror, tmp_path / 'tsv')
    http = HttpServer(mirror)
    root, local = tmp_path / 'shared', tmp_path / 'local'
    try:
        res = data('sync', '--data-root', root, '--mirror', http.url, '--databases', 'uniref30_2302')
        first = os.path.realpath(str(root / 'current'))
        fetched = list(http.requests)
        # Unchanged upstream: both kept, their shared folder linked once, nothing fetched or published.
        again = data('sync', '--data-root', root, '--mirror', http.url, '--databases', 'uniref30_2302')
    finally:
        http.close()
    assert res.returncode == 0, res.stdout
    assert again.returncode == 0 and 'up to date' in again.stdout and 'tsv2exprofiledb' not in again.stdout, again.stdout
    assert os.path.realpath(str(root / 'current')) == first
    # One name asked, both come: they share colabfold/. Each prepared by tsv2exprofiledb.
    assert {p for p, _ in fetched} == {'/colabfold/%s.tar.gz' % n for n in registry.COLABFOLD}
    for name in registry.COLABFOLD:
        assert '%-12s mmseqs tsv2exprofiledb' % name in res.stdout, res.stdout
    current = os.path.realpath(str(root / 'current'))
    folder = os.path.join(current, registry.COLABFOLD_DIR)
    names = os.listdir(folder)
    assert not [n for n in names if n.endswith('.tsv')] and not [n for n in names if os.path.islink(os.path.join(folder, n))]
    for db in registry.COLABFOLD.values():
        assert all(os.path.isfile(os.path.join(current, rel)) for rel in db.required), db.name
    assert data('verify', '--data-root', root).returncode == 0
    archives = json.load(open(os.path.join(current, 'manifest.json')))['archives']   # the releases fetched
    assert sorted(archives) == sorted(db.sources[0].url for db in registry.COLABFOLD.values())
    res = data('stage', '--data-root', root, '--local-root', local)
    assert res.returncode == 0, res.stdout
    staged = os.path.join(str(local), 'current', registry.COLABFOLD_DIR)
    # The staged databases answer ColabFold's search as the test databases they were made from do.
    sequence = ''.join(open(targets['hbb_human']).read().split('\n')[1:]).strip()

    def a3m(base, work):
        dbs = [os.path.join(base, registry.COLABFOLD[n].paths[r]) for n, r in (('uniref30_2302', 'colabfold_uniref'),
                                                                                ('colabfold_envdb_202108', 'colabfold_envdb'))]
        return colabfold_search.a3m('mmseqs', sequence, dbs[0], dbs[1], str(tmp_path / work), 2)
    from_staged = a3m(os.path.dirname(staged), 'staged')
    assert from_staged == a3m(data_dir, 'test_dbs') and from_staged.count('>') > 10


def test_gpu_dbs_pads_colabfold_s_databases_and_a_change_prepares_them_again(colabfold, data_dir, targets, tmp_path):
    """--gpu-dbs: tsv2exprofiledb --gpu 1 (makepaddedseqdb inside) with the real MMseqs2 18, on the CPU;
    the padded files are in the manifest and verified; the CPU search reads them; MMseqs2 14 is
    refused before anything changes; a sync without --gpu-dbs prepares them again, unpadded."""
    mirror = tmp_path / 'mirror'
    for name in registry.COLABFOLD:
        colabfold_archive(data_dir, name, mirror, tmp_path / 'tsv')
    mmseqs_18 = {'PATH': os.path.dirname(colabfold[1]) + os.pathsep + os.environ['PATH']}
    root = tmp_path / 'shared'
    http = HttpServer(mirror)
    try:
        old = data('sync', '--data-root', root, '--mirror', http.url, '--databases', 'uniref30_2302')
        first = os.path.realpath(str(root / 'current'))
        refused = data('sync', '--data-root', root, '--mirror', http.url, '--databases', 'uniref30_2302', '--gpu-dbs')
        padded = data('sync', '--data-root', root, '--mirror', http.url, '--databases', 'uniref30_2302', '--gpu-dbs',
                      env=mmseqs_18)
        gpu_version = os.path.realpath(str(root / 'current'))
        back = data('sync', '--data-root', root, '--mirror', http.url, '--databases', 'uniref30_2302')
    finally:
        http.close()
    assert old.returncode == 0, old.stdout
    # Debian's MMseqs2 14 first on PATH: no --gpu in its tsv2exprofiledb.
    assert refused.returncode == 3 and 'MMseqs2 before release 16' in refused.stdout, refused.stdout
    assert 'is not padded for MMseqs2-GPU, and --gpu-dbs asks otherwise' in refused.stdout
    assert padded.returncode == 0, padded.stdout
    assert gpu_version != first
    for name, db in registry.COLABFOLD.items():
        assert '%-12s mmseqs tsv2exprofiledb --gpu 1' % name in padded.stdout, padded.stdout
        assert not mmseqs_db.padded(os.path.join(first, db.paths[next(iter(db.paths))]))
        assert mmseqs_db.padded(os.path.join(gpu_version, db.paths[next(iter(db.paths))]))
    files = json.load(open(os.path.join(gpu_version, 'manifest.json')))['files']
    assert 'colabfold/uniref30_2302_db.dbtype' in files and 'colabfold/uniref30_2302_db.lookup' in files
    assert data('verify', '--data-root', root).returncode == 0   # (back is current now: verified below too)
    # The padded databases still serve the CPU search (ColabFold's GPU databases serve both).
    sequence = ''.join(open(targets['hbb_human']).read().split('\n')[1:]).strip()
    dbs = [os.path.join(gpu_version, registry.COLABFOLD[n].paths[r])
           for n, r in (('uniref30_2302', 'colabfold_uniref'), ('colabfold_envdb_202108', 'colabfold_envdb'))]
    assert colabfold_search.a3m(colabfold[1], sequence, dbs[0], dbs[1], str(tmp_path / 'cpu'), 2).count('>') > 10
    assert back.returncode == 0 and 'is padded for MMseqs2-GPU, and --gpu-dbs asks otherwise' in back.stdout, back.stdout
    current = os.path.realpath(str(root / 'current'))
    assert not mmseqs_db.padded(os.path.join(current, registry.COLABFOLD['uniref30_2302'].paths['colabfold_uniref']))
