"""alphafold-data sync against real servers on 127.0.0.1: a Range-capable HTTP mirror with
injected faults, and an rsync daemon for the mmCIF tree. The archives are built here, in the
real formats (.gz, .tar.gz with ffindex files, gzipped mmCIF in the divided layout), from the
real-data test databases."""
import glob
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from conftest import ROOT, run_kit
from data_sync import layout
from servers import HttpServer, RsyncDaemon

SUBSET = 'uniref90,mgnify,small_bfd,pdb70,pdb_mmcif'
UNIREF90 = '/pub/databases/uniprot/uniref/uniref90/uniref90.fasta.gz'
MGNIFY = '/alphafold-databases/v2.3/mgy_clusters_2022_05.fa.gz'
PDB70_DIR = '/~compbiol/data/hhsuite/databases/hhsuite_dbs/old-releases/'
PDB70 = PDB70_DIR + 'pdb70_from_mmcif_200401.tar.gz'


def gz(src, dst, level=9):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(src, 'rb') as f, gzip.open(dst, 'wb', compresslevel=level) as g:
        shutil.copyfileobj(f, g)


def build_mirror(data_dir, root):
    """The upstream layout under one mirror root, made from the test databases."""
    gz(os.path.join(data_dir, 'uniref90/uniref90.fasta'), str(root) + UNIREF90, level=0)   # ~34 kB
    gz(os.path.join(data_dir, 'mgnify/mgy_clusters_2022_05.fa'), str(root) + MGNIFY)
    gz(os.path.join(data_dir, 'small_bfd/bfd-first_non_consensus_sequences.fasta'),
       str(root) + '/alphafold-databases/reduced_dbs/bfd-first_non_consensus_sequences.fasta.gz')
    os.makedirs(str(root) + PDB70_DIR)
    with tarfile.open(str(root) + PDB70, 'w:gz') as tar:
        for path in sorted(glob.glob(os.path.join(data_dir, 'pdb70', 'pdb70_*'))):
            tar.add(path, arcname=os.path.basename(path))
    with open(str(root) + PDB70, 'rb') as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    with open(str(root) + PDB70_DIR + 'md5sum', 'w') as f:
        f.write('%s  pdb70_from_mmcif_200401.tar.gz\n' % md5)
    os.makedirs(str(root) + '/pub/pdb/data/status')
    shutil.copy(os.path.join(data_dir, 'pdb_mmcif/obsolete.dat'), str(root) + '/pub/pdb/data/status/obsolete.dat')
    mmcif = root / 'rsync' / 'structures' / 'divided' / 'mmCIF'
    for cif in glob.glob(os.path.join(data_dir, 'pdb_mmcif/mmcif_files/*.cif')):
        pdb_id = os.path.basename(cif)[:4]
        gz(cif, str(mmcif / pdb_id[1:3] / (pdb_id + '.cif.gz')))


@pytest.fixture
def mirror(data_dir, tmp_path):
    root = tmp_path / 'mirror'
    build_mirror(data_dir, root)
    http = HttpServer(root)
    rsyncd = RsyncDaemon(tmp_path, {'ftp_data': str(root / 'rsync')})
    yield http, rsyncd
    http.close()
    rsyncd.close()


def data(*args, **kw):
    return subprocess.run([sys.executable, '-m', 'data_sync'] + [str(a) for a in args], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          env=dict(os.environ, ALPHAFOLD_SITE_CONFIG=''), **kw)


def sync(root, mirror, *extra):
    http, rsyncd = mirror
    return data('sync', '--data-root', root, '--mirror', http.url, '--rsync-mirror', rsyncd.url,
                '--databases', SUBSET, *extra)


@pytest.mark.parametrize('downloader', ['aria2c', 'requests'])
def test_sync_survives_drops_503s_and_a_flipped_byte_and_the_result_runs(mirror, tmp_path, downloader, targets):
    http, _ = mirror
    http.faults[UNIREF90] = {'drop_after': 20000}      # connection dies mid-file
    http.faults[MGNIFY] = {'status_503': 2}            # busy twice
    http.faults[PDB70] = {'flip': True}                # one corrupt response
    root = tmp_path / 'shared'
    res = sync(root, mirror, '--downloader', downloader)
    assert res.returncode == 0, res.stdout + res.stderr
    assert any(p == UNIREF90 and r and not r.startswith('bytes=0-') for p, r in http.requests), http.requests
    assert [p for p, _ in http.requests].count(MGNIFY) >= 3
    assert 'pdb70        md5 mismatch, fetching again' in res.stdout
    assert data('verify', '--data-root', root).returncode == 0
    current = os.path.realpath(str(root / 'current'))
    record = json.load(open(os.path.join(current, 'manifest.json')))
    assert record['archives']['https://ftp.ebi.ac.uk' + UNIREF90]['sha256']
    # The synced tree is a working AlphaFold data directory.
    out = run_kit('msa', '--fasta', targets['e2_dbd'], '--output-dir', tmp_path / 'out', '--data-dir', current,
                  '--db-preset', 'reduced_dbs')
    assert out.returncode == 0, out.stdout
    meta = json.load(open(str(tmp_path / 'out' / 'e2_dbd' / 'features.meta.json')))
    assert meta['data_manifest_id'] == layout.read_id(os.path.join(current, 'manifest.id')) == record['id']
    assert not (root / '.incoming').exists()


def test_unchanged_resync_fetches_nothing_and_keeps_the_version(mirror, tmp_path):
    http, _ = mirror
    root = tmp_path / 'shared'
    assert sync(root, mirror).returncode == 0
    before = os.path.realpath(str(root / 'current'))
    http.requests.clear()
    res = sync(root, mirror)
    assert res.returncode == 0 and 'up to date' in res.stdout
    assert http.requests == [] and os.path.realpath(str(root / 'current')) == before


def test_corruption_is_detected_and_repaired(mirror, tmp_path):
    root = tmp_path / 'shared'
    assert sync(root, mirror).returncode == 0
    fasta = os.path.join(os.path.realpath(str(root / 'current')), 'mgnify', 'mgy_clusters_2022_05.fa')
    blob = bytearray(open(fasta, 'rb').read())
    blob[10] ^= 1
    open(fasta, 'wb').write(bytes(blob))
    res = data('verify', '--data-root', root)
    assert res.returncode == 6 and 'mgnify/mgy_clusters_2022_05.fa: checksum differs' in res.stdout
    assert 'up to date' in sync(root, mirror).stdout          # a plain sync checks sizes only
    advice = res.stderr.split('fix: ', 1)[1].split(' fetches them again')[0]
    assert advice.startswith('alphafold-data sync --verify full') and '--databases mgnify' in advice, res.stderr
    http, rsyncd = mirror
    res = data(*advice.split()[1:] + ['--mirror', http.url, '--rsync-mirror', rsyncd.url])   # the advice, as printed
    assert res.returncode == 0, res.stderr
    assert 'mgnify       download' in res.stdout and 'uniref90' in res.stdout.split('(not in --databases)')[0]
    assert data('verify', '--data-root', root).returncode == 0


SEQRES = '/pub/pdb/derived_data/pdb_seqres.txt'


def weekly(root, mirror):
    """The weekly cron's sync, of the PDB and of one database that stays as it is."""
    http, rsyncd = mirror
    return data('sync', '--data-root', root, '--mirror', http.url, '--rsync-mirror', rsyncd.url,
                '--databases', 'uniref90,pdb_seqres,pdb_mmcif')


def versions(root):
    return sorted(os.listdir(str(root / 'versions')))


def later(path):
    """A minute later than now, as upstream's next weekly release."""
    os.utime(str(path), (time.time() + 60, time.time() + 60))


def test_weekly_sync_publishes_what_changed_upstream_and_nothing_else(mirror, data_dir, tmp_path):
    http, _ = mirror
    seqres = tmp_path / 'mirror' / SEQRES.lstrip('/')
    seqres.parent.mkdir(parents=True)
    shutil.copy(os.path.join(data_dir, 'pdb_seqres', 'pdb_seqres.txt'), str(seqres))
    root = tmp_path / 'shared'
    assert weekly(root, mirror).returncode == 0
    first = versions(root)
    # Nothing changed upstream: nothing fetched, no new version.
    del http.requests[:]
    res = weekly(root, mirror)
    assert res.returncode == 0 and 'up to date' in res.stdout, res.stdout + res.stderr
    assert versions(root) == first and http.requests == []
    # A new pdb_seqres.txt of the same size: its ETag and Last-Modified tell.
    seqres.write_bytes(seqres.read_bytes().replace(b'mol:protein', b'mol:proteiN', 1))
    later(seqres)
    res = weekly(root, mirror)
    assert res.returncode == 0 and 'pdb_seqres   changed upstream: etag' in res.stdout, res.stdout + res.stderr
    assert (root / 'current' / 'pdb_seqres' / 'pdb_seqres.txt').read_bytes() == seqres.read_bytes()
    assert [p for p, _ in http.requests] == [SEQRES] and len(versions(root)) == 2
    # One mmCIF file changed and one added upstream: rsync brings them, only they are unzipped again.
    mmcif = tmp_path / 'mirror' / 'rsync' / 'structures' / 'divided' / 'mmCIF'
    text = open(os.path.join(data_dir, 'pdb_mmcif', 'mmcif_files', '1a7g.cif'), 'rb').read()
    with gzip.open(str(mmcif / 'a7' / '1a7g.cif.gz'), 'wb') as g:
        g.write(text + b'# revised\n')
    later(mmcif / 'a7' / '1a7g.cif.gz')
    gz(os.path.join(data_dir, 'pdb_mmcif', 'mmcif_files', '2xhe.cif'), str(mmcif / 'ne' / '9new.cif.gz'))
    before = os.path.realpath(str(root / 'current'))
    del http.requests[:]
    res = weekly(root, mirror)
    assert res.returncode == 0 and 'published version' in res.stdout, res.stdout + res.stderr
    files = root / 'current' / 'pdb_mmcif' / 'mmcif_files'
    assert (files / '1a7g.cif').read_bytes() == text + b'# revised\n' and (files / '9new.cif').exists()
    assert os.stat(str(files / '2xhe.cif')).st_ino == \
        os.stat(os.path.join(before, 'pdb_mmcif', 'mmcif_files', '2xhe.cif')).st_ino   # kept, not unzipped
    assert http.requests == [] and len(versions(root)) == 3
    assert data('verify', '--data-root', root).returncode == 0
    # And the week after, nothing new.
    res = weekly(root, mirror)
    assert res.returncode == 0 and 'up to date' in res.stdout and len(versions(root)) == 3


def test_a_sync_keeps_the_shards_of_what_it_keeps_and_stage_carries_them(mirror, data_dir, tmp_path):
    """A sharded UniRef90 stays sharded (its manifest record with it) when a sync publishes a new
    pdb_seqres; the changed pdb_seqres loses its record (its shards were of the old file). Before,
    the new version's manifest had no shards record, so every search ran unsharded. A node-local
    copy (stage) keeps the record and the shards."""
    seqres = tmp_path / 'mirror' / SEQRES.lstrip('/')
    seqres.parent.mkdir(parents=True)
    shutil.copy(os.path.join(data_dir, 'pdb_seqres', 'pdb_seqres.txt'), str(seqres))
    root = tmp_path / 'shared'
    assert weekly(root, mirror).returncode == 0
    res = data('shard', '--data-root', root, '--shards', 2, '--databases', 'uniref90,pdb_seqres')
    assert res.returncode == 0, res.stdout + res.stderr
    sharded = json.load(open(str(root / 'current' / 'manifest.json')))['shards']
    assert sorted(sharded) == ['pdb_seqres', 'uniref90']
    seqres.write_bytes(seqres.read_bytes().replace(b'mol:protein', b'mol:proteiN', 1))
    later(seqres)
    res = weekly(root, mirror)
    assert res.returncode == 0 and 'published version' in res.stdout, res.stdout + res.stderr
    recorded = json.load(open(str(root / 'current' / 'manifest.json')))
    assert recorded['shards'] == {'uniref90': sharded['uniref90']}
    assert not glob.glob(str(root / 'current' / 'pdb_seqres' / '*shard*'))   # not left behind, unrecorded
    assert data('verify', '--data-root', root).returncode == 0
    local = tmp_path / 'local'
    res = data('stage', '--data-root', root, '--local-root', local)
    assert res.returncode == 0, res.stdout + res.stderr
    from fold_runtime.cpu_stage import databases
    found = databases.shards(str(local / 'current'))
    assert list(found) == [str(local / 'current' / 'uniref90' / 'uniref90.fasta')]
    assert [os.path.exists(p) for p in found[str(local / 'current' / 'uniref90' / 'uniref90.fasta')].paths] == [True] * 2


def test_failed_sync_never_moves_current_and_a_404_is_explained(mirror, tmp_path):
    root = tmp_path / 'shared'
    assert sync(root, mirror).returncode == 0
    before = os.path.realpath(str(root / 'current'))
    http, rsyncd = mirror
    res = data('sync', '--data-root', root, '--mirror', http.url, '--rsync-mirror', rsyncd.url,
               '--databases', SUBSET + ',pdb_seqres')         # pdb_seqres is not on this mirror
    assert res.returncode == 3, res.stderr
    assert '404' in res.stderr and '--mirror' in res.stderr
    assert os.path.realpath(str(root / 'current')) == before
    assert data('verify', '--data-root', root).returncode == 0


def test_two_concurrent_syncs_do_not_collide(mirror, tmp_path):
    http, _ = mirror
    http.faults[UNIREF90] = {'delay': 2}
    root = tmp_path / 'shared'
    results = []
    threads = [threading.Thread(target=lambda: results.append(sync(root, mirror))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0, 0]
    assert sum('another alphafold-data sync (pid' in r.stdout and '.lock; exiting' in r.stdout for r in results) == 1
    assert len(os.listdir(str(root / 'versions'))) == 1
    assert data('verify', '--data-root', root).returncode == 0


@pytest.mark.parametrize('downloader', ['aria2c', 'requests'])
def test_full_disk_during_download_keeps_the_previous_version(mirror, data_dir, tmp_path, mount_tmpfs, downloader):
    http, _ = mirror
    root = mount_tmpfs('size=4m')   # the subset takes about 2.7 MB (three mmCIF files)
    assert sync(root, mirror, '--downloader', downloader).returncode == 0
    before = os.path.realpath(str(root / 'current'))
    # The mirror now serves a new UniRef90 (real sequences, repeated) too large for the disk, while
    # HEAD still announces the old size (replaced between HEAD and GET): the up-front check passes,
    # and the disk fills in the middle of the download.
    old_size = os.path.getsize(str(tmp_path / 'mirror') + UNIREF90)
    text = open(os.path.join(data_dir, 'uniref90/uniref90.fasta'), 'rb').read()
    with gzip.open(str(tmp_path / 'mirror') + UNIREF90, 'wb', compresslevel=1) as g:
        for i in range(150):
            g.write(text.replace(b'>', b'>r%d_' % i))
    http.faults[UNIREF90] = {'announce': old_size}
    # uniref90 is intact locally, so force its refetch by corrupting it.
    target = os.path.join(before, 'uniref90', 'uniref90.fasta')
    blob = bytearray(open(target, 'rb').read())
    blob[5] ^= 1
    open(target, 'wb').write(bytes(blob))
    free = shutil.disk_usage(str(root)).free
    res = sync(root, mirror, '--downloader', downloader, '--verify', 'full')
    assert res.returncode == 5, res.stdout + res.stderr
    assert 'no space left on the device while writing %s' % (root / 'downloads' / 'uniref90') in res.stderr
    assert 'Traceback' not in res.stderr
    assert os.path.realpath(str(root / 'current')) == before and not (root / '.incoming').exists()
    assert os.listdir(str(root / 'downloads' / 'uniref90')) == []     # a part that cannot fit is not kept
    assert shutil.disk_usage(str(root)).free > free - (16 << 10)      # the data root is left as it was (a log line)
    # Announced truly, the same download is refused before anything is written.
    http.faults.clear()
    res = sync(root, mirror, '--downloader', downloader, '--verify', 'full')
    assert res.returncode == 5 and 'not enough space on %s' % root in res.stderr, res.stdout + res.stderr
    assert os.path.realpath(str(root / 'current')) == before and not (root / '.incoming').exists()


def test_quiet_sync_for_cron(mirror, tmp_path):
    root = tmp_path / 'shared'
    res = sync(root, mirror, '--quiet')
    assert res.returncode == 0 and res.stdout == '' and res.stderr == ''
    assert 'published version' in (root / 'sync.log').read_text()
    http, rsyncd = mirror
    # A database that must be fetched, from a mirror that lacks it: a short message, non-zero.
    res = data('sync', '--quiet', '--data-root', root, '--mirror', http.url + '/nowhere', '--rsync-mirror',
               rsyncd.url, '--databases', SUBSET + ',pdb_seqres')
    assert res.returncode != 0 and res.stdout == '' and 'error' in res.stderr
