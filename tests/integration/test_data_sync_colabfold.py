"""alphafold-data for ColabFold's databases (--msa-mode mmseqs2) against a real HTTP mirror on
127.0.0.1: ColabFold's TSV archives, made here from the test databases with the real MMseqs2 (each
database part as `key<TAB>line` rows, the layout tsv2exprofiledb reads), are downloaded, prepared as
setup_databases.sh does, verified, staged node-local and searched."""
import json
import os
import subprocess
import tarfile

from data_sync import registry
from fold_runtime.cpu_stage import colabfold_search
from servers import HttpServer
from conftest import run_data as data

TSV_OF_PART = {'': '', '_h': '_seq_h', '_seq': '_seq', '_aln': '_aln'}   # <name><part>.tsv from <name>_db<part>


def colabfold_archive(data_dir, name, mirror_root, work):
    """<mirror>/colabfold/<name>.tar.gz as ColabFold publishes it: <name>.tsv, _h, _seq and _aln.tsv."""
    prefix = os.path.join(data_dir, registry.COLABFOLD_DIR, name + '_db')
    os.makedirs(str(work), exist_ok=True)
    archive = mirror_root / 'colabfold' / (name + '.tar.gz')
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(str(archive), 'w:gz', compresslevel=0) as tar:   # small files: no bomb-sized ratio
        for part, db_part in TSV_OF_PART.items():
            tsv = os.path.join(str(work), name + part + '.tsv')
            subprocess.run(['mmseqs', 'prefixid', prefix + db_part, tsv, '--tsv', '-v', '1'], check=True)
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
