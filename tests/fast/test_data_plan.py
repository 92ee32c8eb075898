"""alphafold-data's registry and plan: no databases, no servers (tmpfs mounts stand for small disks)."""
import os
import subprocess
import sys

from conftest import ROOT, run_data as data
from data_sync import registry
from kit_common.errors import EXIT_MISSING


def test_registry_covers_both_database_sets_with_sources():
    for version, names in (('2.3', ['params', 'bfd', 'small_bfd', 'mgnify', 'pdb70', 'pdb_mmcif', 'pdb_seqres',
                                    'uniref30', 'uniref90', 'uniprot']),
                           ('2.0', ['params', 'bfd', 'small_bfd', 'mgnify', 'pdb70', 'pdb_mmcif', 'uniclust30',
                                    'uniref90'])):
        assert sorted(registry.DATABASES[version]) == sorted(names + ['colabfold_envdb_202108', 'uniref30_2302'])
        for db in registry.DATABASES[version].values():
            assert db.sources and db.required and db.unpacked_bytes >= db.download_bytes > 0, db.name
    assert registry.DATABASES['2.3']['pdb_mmcif'].transport == 'rsync'
    total = sum(db.unpacked_bytes for db in registry.DATABASES['2.3'].values() if db.name not in registry.COLABFOLD)
    assert 2.5e12 < total < 2.8e12   # AlphaFold 2.3's 2.62 TB
    colabfold = sum(db.download_bytes + db.unpacked_bytes for db in registry.COLABFOLD.values())
    assert 0.9e12 < colabfold < 1e12  # ColabFold's README: 940 GB for its setup_databases.sh


def test_plan_of_the_mmseqs2_preset_names_colabfold_s_databases_which_come_together(tmp_path):
    """--preset mmseqs2: the weights, pdb70 and mmCIF for templates, and ColabFold's TSV archives from
    opendata.mmseqs.org; the two ColabFold databases share colabfold/, so asking for one plans both."""
    res = data('plan', '--data-root', tmp_path, '--preset', 'mmseqs2', '--show-urls')
    lines = [l.split()[0] for l in res.stdout.splitlines() if l and not l.startswith(' ')]
    assert lines[:5] == ['params', 'pdb70', 'pdb_mmcif', 'uniref30_2302', 'colabfold_envdb_202108'], res.stdout
    assert 'https://opendata.mmseqs.org/colabfold/uniref30_2302.tar.gz' in res.stdout
    assert 'https://opendata.mmseqs.org/colabfold/colabfold_envdb_202108.tar.gz' in res.stdout
    res = data('plan', '--data-root', tmp_path, '--databases', 'uniref30_2302')
    assert [l.split()[0] for l in res.stdout.splitlines() if 'download' in l] == ['uniref30_2302',
                                                                                  'colabfold_envdb_202108']


def test_plan_shows_mirrored_urls_keeping_upstream_paths(tmp_path):
    res = data('plan', '--data-root', tmp_path, '--preset', 'multimer', '--show-urls',
               '--mirror', 'http://mirror.example/af', '--databases', 'mgnify,uniprot')
    assert 'http://mirror.example/af/alphafold-databases/v2.3/mgy_clusters_2022_05.fa.gz' in res.stdout
    assert 'http://mirror.example/af/pub/databases/uniprot/current_release/knowledgebase/complete/uniprot_sprot.fasta.gz' in res.stdout


def test_plan_refuses_when_it_will_not_fit(tmp_path):
    small = tmp_path / 'small'
    small.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(small)], check=True)
    try:
        res = data('plan', '--data-root', small, '--databases', 'uniref90')
        assert res.returncode == 5 and 'not enough space' in res.stdout and 'limit --databases' in res.stdout
    finally:
        subprocess.run(['umount', str(small)], check=True)


def test_plan_checks_the_node_local_file_system_too(tmp_path):
    local = tmp_path / 'local'
    local.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(local)], check=True)
    try:
        res = data('plan', '--data-root', tmp_path / 'shared', '--local-root', local, '--databases', 'pdb_seqres')
        assert res.returncode == 5, res.stdout
        assert 'not enough space on %s: 0.2 GB needed' % local in res.stdout
        assert 'needed 0.4 GB' in res.stdout and str(tmp_path / 'shared') in res.stdout
    finally:
        subprocess.run(['umount', str(local)], check=True)


def test_unknown_database_is_a_clear_error(tmp_path):
    res = data('plan', '--data-root', tmp_path, '--databases', 'uniref91')
    assert res.returncode == 2 and "unknown database(s): uniref91" in res.stdout and 'uniref90' in res.stdout


def test_plan_creates_nothing_and_explains_impossible_roots(tmp_path):
    res = data('plan', '--data-root', tmp_path / 'new' / 'shared', '--local-root', tmp_path / 'local',
               '--databases', 'pdb_seqres')
    assert res.returncode == 0, res.stdout
    assert os.listdir(str(tmp_path)) == []                      # measured at the parent, not created
    (tmp_path / 'afile').write_text('')
    res = data('plan', '--data-root', tmp_path / 'afile' / 'shared', '--databases', 'pdb_seqres')
    assert res.returncode == 2 and '%s is not a directory' % (tmp_path / 'afile') in res.stdout
    res = data('plan', '--data-root', '/proc/alphafold', '--databases', 'pdb_seqres')
    assert res.returncode == 5 and 'not enough space on /proc/alphafold' in res.stdout
    assert 'Traceback' not in res.stdout


def test_status_of_an_empty_root_says_so(tmp_path):
    """Incomplete is a missing database (3), not bad input (2), whatever the node-local copy."""
    res = data('status', '--data-root', tmp_path, '--databases', 'uniref90')
    assert res.returncode == EXIT_MISSING and 'no published version, incomplete; missing: uniref90' in res.stdout
    assert 'nan' not in res.stdout
    res = data('status', '--data-root', tmp_path, '--local-root', tmp_path / 'local', '--databases', 'uniref90')
    assert res.returncode == EXIT_MISSING and 'no published version, incomplete' in res.stdout


def test_an_error_is_printed_once_on_stderr_and_once_in_the_log(tmp_path):
    log = tmp_path / 'data.log'
    res = subprocess.run([sys.executable, '-m', 'data_sync', 'stage', '--data-root', str(tmp_path / 'empty'),
                          '--local-root', str(tmp_path / 'local'), '--log-file', str(log)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                         env=dict(os.environ, ALPHAFOLD_SITE_CONFIG=''))
    assert res.returncode == 3 and res.stdout == ''
    assert res.stderr.count('has no published version') == 1 and res.stderr.startswith('alphafold-data: error:')
    assert log.read_text().count('has no published version') == 1
