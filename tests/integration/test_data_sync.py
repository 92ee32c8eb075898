"""alphafold-data: registry, plan, publish/verify, node-local staging, status, prune."""
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, run_data as data
from data_sync import layout
from kit_common.errors import EXIT_FAILED

SUBSET = 'uniref90,mgnify,small_bfd,pdb70,pdb_mmcif'




@pytest.fixture
def unpacked(data_dir, tmp_path):
    """Makes real unpacked trees (copies of the test databases) to publish; publishing moves them."""
    count = []

    def make():
        count.append(1)
        tree = tmp_path / ('incoming%d' % len(count))
        for name in ('uniref90', 'mgnify', 'small_bfd', 'pdb70', 'pdb_mmcif'):
            shutil.copytree(os.path.join(data_dir, name), str(tree / name))
        return tree
    return make


def test_publish_verify_detects_corruption_and_refuses_incomplete_sets(unpacked, tmp_path):
    root = tmp_path / 'shared'
    res = data('publish', '--data-root', root, '--from', unpacked(), '--preset', 'reduced_dbs', '--databases', SUBSET)
    assert res.returncode == 0, res.stdout
    current = os.path.realpath(str(root / 'current'))
    ident = layout.read_id(os.path.join(current, 'manifest.id'))
    assert os.path.basename(current) == ident and len(ident) == 16
    assert data('verify', '--data-root', root).returncode == 0
    fasta = os.path.join(current, 'uniref90', 'uniref90.fasta')
    blob = bytearray(open(fasta, 'rb').read())
    blob[100] ^= 1                                   # one flipped bit
    open(fasta, 'wb').write(bytes(blob))
    res = data('verify', '--data-root', root)
    assert res.returncode == 6 and 'uniref90/uniref90.fasta: checksum differs' in res.stdout
    with open(fasta, 'ab') as f:
        f.truncate(50)
    assert 'uniref90/uniref90.fasta: size 50' in data('verify', '--data-root', root).stdout
    # An incomplete set is never published: current does not move.
    broken = unpacked()
    os.unlink(str(broken / 'mgnify' / 'mgy_clusters_2022_05.fa'))
    res = data('publish', '--data-root', root, '--from', broken, '--preset', 'reduced_dbs', '--databases', SUBSET)
    assert res.returncode == 6 and 'mgnify misses mgnify/mgy_clusters_2022_05.fa' in res.stdout
    assert os.path.realpath(str(root / 'current')) == current


def test_stage_copies_once_then_nothing_and_status_tracks_freshness(unpacked, tmp_path, targets):
    root, local = tmp_path / 'shared', tmp_path / 'local'
    assert data('publish', '--data-root', root, '--from', unpacked(), '--databases', SUBSET).returncode == 0
    res = data('status', '--data-root', root, '--local-root', local, '--databases', SUBSET)
    assert res.returncode == EXIT_FAILED and 'no verified node-local copy' in res.stdout
    res = data('stage', '--data-root', root, '--local-root', local)
    assert res.returncode == 0, res.stdout
    assert ': 0 files copied' not in res.stdout
    first = os.path.realpath(str(local / 'current'))
    res = data('stage', '--data-root', root, '--local-root', local)
    assert res.returncode == 0 and 'is current' in res.stdout          # unchanged: copies nothing
    res = data('status', '--data-root', root, '--local-root', local, '--databases', SUBSET)
    assert res.returncode == 0 and 'matches manifest' in res.stdout and 'complete, 0.00 GB' in res.stdout
    assert layout.choose_data_dir(str(root), str(local))[0] == str(local / 'current')
    # The runtime, given only the site config, reads the node-local copy and records its manifest.
    conf = tmp_path / 'site.conf'
    conf.write_text('[data]\nshared_root = %s\nlocal_root = %s\n' % (root, local))
    env = {k: v for k, v in os.environ.items() if k != 'ALPHAFOLD_DATA_DIR'}
    msa = subprocess.run([sys.executable, '-m', 'fold_runtime', 'msa', '--fasta', targets['conotoxin'],
                          '--output-dir', str(tmp_path / 'out'), '--db-preset', 'reduced_dbs'], cwd=ROOT,
                         env=dict(env, ALPHAFOLD_SITE_CONFIG=str(conf)), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    assert msa.returncode == 0, msa.stdout
    assert 'data directory %s/current (node-local copy' % local in msa.stdout
    import json
    meta = json.load(open(str(tmp_path / 'out' / 'conotoxin' / 'features.meta.json')))
    assert meta['data_manifest_id'] == layout.read_id(str(local / 'current' / 'manifest.id'))
    # A new shared version: the local copy is stale until staged; the old one survives the switch.
    new = tmp_path / 'v2'
    shutil.copytree(os.path.realpath(str(root / 'current')), str(new))
    for f in ('manifest.json', 'manifest.id'):
        os.unlink(str(new / f))
    with open(str(new / 'mgnify' / 'mgy_clusters_2022_05.fa'), 'a') as f:
        f.write('>extra\nMKV\n')
    assert data('publish', '--data-root', root, '--from', new, '--databases', SUBSET).returncode == 0
    res = data('status', '--data-root', root, '--local-root', local, '--databases', SUBSET)
    assert res.returncode == 1 and 'stale' in res.stdout
    res = data('stage', '--data-root', root, '--local-root', local)
    assert res.returncode == 0 and ': 3 files copied' in res.stdout, res.stdout   # the changed file + manifest
    assert os.path.isdir(first) and os.path.realpath(str(local / 'current')) != first
    assert os.stat(os.path.join(first, 'uniref90', 'uniref90.fasta')).st_ino == \
        os.stat(str(local / 'current' / 'uniref90' / 'uniref90.fasta')).st_ino   # hard-linked, not copied


def test_stage_onto_a_full_disk_keeps_the_previous_copy(unpacked, tmp_path):
    root, local = tmp_path / 'shared', tmp_path / 'local'
    assert data('publish', '--data-root', root, '--from', unpacked(), '--databases', SUBSET).returncode == 0
    local.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1200k', 'tmpfs', str(local)], check=True)
    try:
        res = data('stage', '--data-root', root, '--local-root', local)
        assert res.returncode == 5 and 'free space on the node-local disk' in res.stdout
        assert not os.path.lexists(str(local / 'current'))
        assert layout.choose_data_dir(str(root), str(local))[0] == str(root / 'current')
    finally:
        subprocess.run(['umount', str(local)], check=True)


def test_prune_keeps_current_and_versions_in_use(unpacked, tmp_path):
    root = tmp_path / 'shared'
    idents = []
    for i in range(3):
        tree = unpacked()
        (tree / 'mgnify' / 'mgy_clusters_2022_05.fa').write_text('>v%d\nMKV\n' % i)
        assert data('publish', '--data-root', root, '--from', tree, '--databases', SUBSET).returncode == 0
        idents.append(os.path.basename(os.path.realpath(str(root / 'current'))))
    (root / 'versions' / idents[0] / '.in-use').write_text('1234\n')
    assert data('prune', '--data-root', root, '--keep', '1').returncode == 0
    assert sorted(os.listdir(str(root / 'versions'))) == sorted([idents[0], idents[2]])


def test_warm_reads_hhsuite_indexes_into_the_page_cache(data_dir):
    res = data('warm', '--data-root', data_dir)
    assert res.returncode == 0, res.stdout
    assert 'warmed' in res.stdout and 'resident in the page cache' in res.stdout
    n = len(glob.glob(os.path.join(data_dir, '*', '*_cs219.ffdata')) + glob.glob(os.path.join(data_dir, '*', '*.ffindex')))
    assert 'warmed %d files' % n in res.stdout


def test_warm_with_the_mmseqs2_preset_reads_colabfold_s_databases_too(data_dir):
    """--preset mmseqs2: ColabFold's database files (each once: MMseqs2's header aliases are links) as well."""
    hh = glob.glob(os.path.join(data_dir, '*', '*_cs219.ffdata')) + glob.glob(os.path.join(data_dir, '*', '*.ffindex'))
    colabfold = [p for p in glob.glob(os.path.join(data_dir, 'colabfold', '*')) if not os.path.islink(p)]
    assert len(colabfold) > 10 and any(p.endswith('uniref30_2302_db_aln') for p in colabfold)
    res = data('warm', '--data-root', data_dir, '--preset', 'mmseqs2')
    assert res.returncode == 0 and 'warmed %d files' % (len(hh) + len(colabfold)) in res.stdout, res.stdout


def test_cron_examples_call_sync_quietly():
    examples = os.path.join(ROOT, 'data_sync', 'examples')
    assert 'alphafold-data sync --quiet' in open(os.path.join(examples, 'alphafold-data.cron')).read()
    assert 'alphafold-data sync --quiet' in open(os.path.join(examples, 'alphafold-data-sync.service')).read()
    assert subprocess.run(['bash', '-n', os.path.join(examples, 'slurm-prolog-stage.sh')]).returncode == 0


def test_shard_splits_jackhmmer_databases_into_verified_contiguous_shards(unpacked, tmp_path):
    root = tmp_path / 'shared'
    assert data('publish', '--data-root', root, '--from', unpacked(), '--preset', 'reduced_dbs',
                '--databases', SUBSET).returncode == 0
    res = data('shard', '--data-root', root, '--shards', 3, '--preset', 'reduced_dbs')
    assert res.returncode == 0, res.stdout
    current = str(root / 'current')
    recorded = json.load(open(os.path.join(current, 'manifest.json')))
    assert sorted(recorded['shards']) == ['mgnify', 'small_bfd', 'uniref90']   # the preset's FASTA databases
    for name, record in recorded['shards'].items():
        fasta = open(os.path.join(current, record['fasta']), 'rb').read()
        parts = [open(os.path.join(current, rel), 'rb').read() for rel, _ in record['shards']]
        assert b''.join(parts) == fasta                                  # contiguous, in order
        assert record['sequences'] == fasta.count(b'>') == sum(n for _, n in record['shards'])
        assert [p.count(b'>') for p in parts] == [n for _, n in record['shards']] and all(parts)
        assert all(rel in recorded['files'] for rel, _ in record['shards'])
    assert data('verify', '--data-root', root).returncode == 0
    # Again with 2 shards of UniRef90 only, then unsharded: the old shards leave the version.
    assert data('shard', '--data-root', root, '--shards', 2, '--databases', 'uniref90').returncode == 0
    assert data('shard', '--data-root', root, '--shards', 1, '--databases', 'uniref90').returncode == 0
    recorded = json.load(open(str(root / 'current' / 'manifest.json')))
    assert 'uniref90' not in recorded['shards'] and len(recorded['shards']['mgnify']['shards']) == 3
    assert not glob.glob(str(root / 'current' / 'uniref90' / '*shard*'))
    res = data('shard', '--data-root', root, '--shards', 1000, '--databases', 'mgnify')
    assert res.returncode == 2 and 'too few for 1000 shards' in res.stdout
    res = data('shard', '--data-root', root, '--shards', 2, '--databases', 'pdb70')
    assert res.returncode == 2 and 'pdb70 cannot be sharded' in res.stdout
    res = data('shard', '--data-root', root, '--shards', 2, '--databases', 'uniprot')
    assert res.returncode == 3 and 'uniprot: not in the current version' in res.stdout
    # A shards record changed by hand is refused, as a manifest's file list is.
    path = str(root / 'current' / 'manifest.json')
    recorded['shards']['mgnify']['sequences'] += 1
    os.unlink(path)
    with open(path, 'w') as f:
        json.dump(recorded, f)
    res = data('verify', '--data-root', root)
    assert res.returncode == 6 and 'the shards of mgnify' in res.stdout and 'Traceback' not in res.stdout
