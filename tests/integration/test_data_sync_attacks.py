"""Faults and attacks at the trust boundaries of alphafold-data and the feature cache (issue #12),
replayed against the real code: malicious archives from a real HTTP mirror and rsync daemon on
127.0.0.1, a tampered shared tree, a second uid in a shared group (setpriv), concurrent commands,
read-only and full file systems (tmpfs). Each case asserts the outcome: nothing written outside
the tree, no code from the data run, nothing lost, the documented exit status, no traceback.

KIT_CODE_ROOT=<a checkout> replays the same cases against other code, e.g. the commit before the
fix (`git archive <rev> | tar -x -C /tmp/before`), where the attacks succeed.
"""
import fcntl
import glob
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest

from conftest import ROOT
from test_data_sync_servers import PDB70, PDB70_DIR, SEQRES, SUBSET, UNIREF90, mirror  # noqa: F401 (fixture)
from test_msa_parity import assert_same_features

CODE = os.environ.get('KIT_CODE_ROOT', ROOT)
GID, VICTIM, ATTACKER = 61000, 61001, 61002      # numeric ids only: nothing is added to /etc/passwd


def run(module, *args, user=None, umask=0o022, home=None):
    """python -m module ARGS from the code under test, as root or as `user` in group GID."""
    cmd = [sys.executable, '-m', module] + [str(a) for a in args]
    return subprocess.run(as_user(user, cmd) if user else cmd, cwd=CODE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, umask=umask, timeout=600,
                          env=dict(os.environ, ALPHAFOLD_SITE_CONFIG='', HOME=home or os.environ['HOME']))


def data(*args):
    return run('data_sync', *args)


def clean(res):
    """No traceback anywhere in the output: every failure is a KitError with a fix."""
    out = res.stdout + res.stderr
    assert 'Traceback' not in out, out
    return out


def as_user(uid, cmd):
    """cmd as uid with GID as its only group. Where the interpreter lives under a directory others
    cannot enter (a pyenv in /root), a private mount namespace lays a traversable tmpfs over that
    directory with the interpreter's tree bound back in; nothing changes outside the namespace."""
    prefix = os.path.realpath(sys.base_prefix)
    blocked = next((d for d in ancestors(prefix) if not os.stat(d).st_mode & stat.S_IXOTH), None)
    cmd = ['setpriv', '--reuid=%d' % uid, '--regid=%d' % GID, '--groups=%d' % GID, '--'] + cmd
    if not blocked:
        return cmd
    stash = tempfile.mkdtemp(prefix='interpreter-')
    script = ('mount --bind "$1" "$2" && mount -t tmpfs -o mode=0755 tmpfs "$3" && mkdir -p "$1" && '
              'mount --bind "$2" "$1" && shift 3 && exec "$@"')
    return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', prefix, stash, blocked] + cmd


def ancestors(path):
    parts = path.strip('/').split('/')
    return ['/' + '/'.join(parts[:i]) for i in range(1, len(parts))]


def sync(root, mirror, *args):
    http, rsyncd = mirror
    return data('sync', '--data-root', root, '--mirror', http.url, '--rsync-mirror', rsyncd.url, *args)


def walk_modes(top):
    """(path, lstat mode) of everything under top."""
    for directory, dirs, names in os.walk(str(top)):
        for name in dirs + names:
            path = os.path.join(directory, name)
            yield path, os.lstat(path).st_mode


# ---- Archives from the mirror ------------------------------------------------------------------

def member(name, kind=tarfile.REGTYPE, content=b'', **fields):
    info = tarfile.TarInfo(name)
    info.type, info.mode = kind, fields.pop('mode', 0o644)
    for k, v in fields.items():
        setattr(info, k, v)
    info.size = len(content) if kind == tarfile.REGTYPE else 0
    return info, content


def archive_attack(tmp_path, case):
    """The members each attack appends to a real pdb70 archive, and what must hold outside."""
    outside = tmp_path / 'outside'
    outside.mkdir()
    precious = outside / 'precious.txt'
    precious.write_text('precious')
    precious.chmod(0o600)
    return {
        # a link to a directory outside, then a file written through it
        'symlink': [member('escape', tarfile.SYMTYPE, linkname=str(outside)), member('escape/pwned', content=b'x')],
        # a hard link to an outside file, then a member of that name: re-writes and chmods the file
        'hardlink': [member('victim', tarfile.LNKTYPE, linkname=str(precious)),
                     member('victim', content=b'overwritten', mode=0o666)],
        'device': [member('null', tarfile.CHRTYPE, devmajor=1, devminor=3)],
        'fifo': [member('fifo', tarfile.FIFOTYPE)],
        'setuid': [member('tool', content=b'#!/bin/sh\n', mode=0o4755)],
        'dotdot': [member('../../../outside/dotdot', content=b'x')],
        'absolute': [member(str(outside / 'absolute'), content=b'x')],
    }[case]


def serve_archive(data_dir, mirror_root, extra):
    """Rebuild the mirror's pdb70 archive as the real files plus `extra` members, and its md5."""
    path = str(mirror_root) + PDB70
    with tarfile.open(path, 'w:gz') as tar:
        for real in sorted(glob.glob(os.path.join(data_dir, 'pdb70', 'pdb70_*'))):
            tar.add(real, arcname=os.path.basename(real))
        for info, content in extra:
            tar.addfile(info, io.BytesIO(content))
    with open(path, 'rb') as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    (mirror_root / PDB70_DIR.strip('/') / 'md5sum').write_text('%s  pdb70_from_mmcif_200401.tar.gz\n' % md5)


@pytest.mark.parametrize('case', ['symlink', 'hardlink', 'device', 'fifo', 'setuid', 'dotdot', 'absolute'])
def test_a_malicious_archive_is_refused_and_writes_nothing_outside(mirror, data_dir, tmp_path, case):
    extra = archive_attack(tmp_path, case)
    serve_archive(data_dir, tmp_path / 'mirror', extra)
    root = tmp_path / 'shared'
    res = sync(root, mirror, '--databases', 'pdb70')
    out = clean(res)
    assert res.returncode == 4, out
    assert 'member %r is' % extra[0][0].name in res.stderr and 'check --mirror' in res.stderr
    assert not (root / 'current').exists() and not (root / '.incoming').exists()
    assert sorted(os.listdir(str(tmp_path / 'outside'))) == ['precious.txt']
    assert (tmp_path / 'outside' / 'precious.txt').read_text() == 'precious'
    assert stat.S_IMODE(os.stat(str(tmp_path / 'outside' / 'precious.txt')).st_mode) == 0o600
    for path, mode in walk_modes(root):
        assert stat.S_ISDIR(mode) or stat.S_ISREG(mode), path
        assert not mode & 0o6000, path


def test_a_link_in_the_mmcif_tree_is_never_followed(mirror, data_dir, tmp_path):
    secret = tmp_path / 'secret.cif.gz'
    with gzip.open(str(secret), 'wb') as f:
        f.write(b'data_SECRET\n')
    divided = tmp_path / 'mirror' / 'rsync' / 'structures' / 'divided' / 'mmCIF' / 'zz'
    divided.mkdir(parents=True)
    os.symlink(str(secret), str(divided / '9zzz.cif.gz'))
    root = tmp_path / 'shared'
    res = sync(root, mirror, '--databases', 'pdb_mmcif')
    clean(res)
    assert res.returncode == 0, res.stderr
    mmcif = root / 'current' / 'pdb_mmcif' / 'mmcif_files'
    assert not (mmcif / '9zzz.cif').exists()
    assert len(os.listdir(str(mmcif))) == len(glob.glob(os.path.join(data_dir, 'pdb_mmcif', 'mmcif_files', '*.cif')))
    assert not any(b'SECRET' in open(p, 'rb').read() for p in glob.glob(str(mmcif / '*')))


def test_aria2c_says_why_it_failed_and_retries_what_is_transient(mirror, tmp_path):
    http, _ = mirror
    http.faults[UNIREF90] = {'status_503': 8}          # more than one aria2c run's --max-tries
    root = tmp_path / 'shared'
    res = sync(root, mirror, '--databases', 'uniref90', '--downloader', 'aria2c', '--quiet')
    assert res.returncode == 0, clean(res)
    assert [p for p, _ in http.requests].count(UNIREF90) >= 9
    res = sync(root, mirror, '--databases', 'pdb_seqres', '--downloader', 'aria2c', '--quiet')   # not mirrored
    assert res.returncode == 3, clean(res)
    assert '(aria2c exit 3, 404 Not Found): errorCode=3 Resource not found' in res.stderr


def test_a_gzip_bomb_stops_at_the_expected_expansion_and_leaves_nothing(mirror, tmp_path, mount_tmpfs):
    bomb = tmp_path / 'mirror' / UNIREF90.lstrip('/')
    bomb.write_bytes(gzip.compress(b'\0' * (64 << 20), 9))          # 64 KB that unpack to 64 MB
    root = mount_tmpfs('size=8m')
    res = sync(root, mirror, '--databases', 'uniref90', '--downloader', 'requests')
    assert res.returncode == 4, clean(res)
    assert '%s unpacks to more than' % (root / 'downloads' / 'uniref90' / 'uniref90.fasta.gz') in res.stderr
    assert not (root / 'current').exists() and not (root / '.incoming').exists()
    assert shutil.disk_usage(str(root)).used < 1 << 20                # the data root is not left full


def test_sync_checks_free_space_before_it_writes(mirror, mount_tmpfs):
    root = mount_tmpfs('size=64k')                    # uniref90 needs its 34 KB download and 67 KB unpacked
    res = sync(root, mirror, '--databases', 'uniref90', '--downloader', 'requests')
    assert res.returncode == 5 and 'not enough space on %s' % root in clean(res), res.stderr
    assert sorted(os.listdir(str(root))) == ['.lock', 'sync.log']


@pytest.mark.parametrize('case', ['killed, then upstream changed', 'killed, upstream unchanged', 'stale part'])
def test_a_resumed_download_never_splices_two_upstream_versions(mirror, tmp_path, case):
    http, _ = mirror
    upstream = tmp_path / 'mirror' / SEQRES.lstrip('/')
    upstream.parent.mkdir(parents=True)
    upstream.write_bytes(b'>OLD_VERSION mol:protein length:9\nMKVLAAGIV\n' * 1000)
    root = tmp_path / 'shared'
    part = root / 'downloads' / 'pdb_seqres' / 'pdb_seqres.txt.part'
    if case == 'stale part':                          # a .part of unknown origin, as a crash of an older kit left
        part.parent.mkdir(parents=True)
        part.write_bytes(upstream.read_bytes()[:20000])
    else:                                             # a real run, killed while its retry of a dropped transfer waits
        http.faults[SEQRES] = {'drop_after': 40000, 'delay': 2}
        proc = subprocess.Popen([sys.executable, '-m', 'data_sync', 'sync', '--data-root', str(root), '--databases',
                                 'pdb_seqres', '--mirror', http.url, '--downloader', 'requests', '--quiet'], cwd=CODE,
                                env=dict(os.environ, ALPHAFOLD_SITE_CONFIG=''))
        while len(http.requests) < 2:
            assert proc.poll() is None
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        http.faults.clear()
    kept = part.stat().st_size
    assert 0 < kept < upstream.stat().st_size
    if case != 'killed, upstream unchanged':
        upstream.write_bytes(b'>101m_A mol:protein length:9\nMVLSEGEWQ\n' * 1000)
        os.utime(str(upstream), (time.time() + 60, time.time() + 60))
    del http.requests[:]
    res = sync(root, mirror, '--databases', 'pdb_seqres', '--downloader', 'requests')
    assert res.returncode == 0, clean(res)
    assert (root / 'current' / 'pdb_seqres' / 'pdb_seqres.txt').read_bytes() == upstream.read_bytes()
    # Resumed with If-Range (answered in full when the version changed); a part of unknown version is not.
    assert http.requests == [(SEQRES, 'bytes=%d-' % kept if case != 'stale part' else None)]
    assert not os.listdir(str(part.parent))


# ---- Sync: what it keeps ----------------------------------------------------------------------

def current(root):
    return os.path.realpath(str(root / 'current'))


def test_a_subset_sync_keeps_every_other_database(mirror, tmp_path):
    root = tmp_path / 'shared'
    assert sync(root, mirror, '--databases', SUBSET).returncode == 0
    before = current(root)
    with open(os.path.join(before, 'uniref90', 'uniref90.fasta'), 'ab') as f:
        f.truncate(100)                              # uniref90 must be fetched again
    res = sync(root, mirror, '--databases', 'uniref90')
    clean(res)
    assert res.returncode == 0, res.stderr
    after = current(root)
    assert after != before and 'uniref90     download' in res.stdout
    assert sorted(os.listdir(after)) == sorted(os.listdir(before))     # all five databases, manifests
    assert data('verify', '--data-root', root).returncode == 0
    assert data('status', '--data-root', root, '--databases', SUBSET).returncode == 0
    kept = 'mgnify/mgy_clusters_2022_05.fa'
    assert os.stat(os.path.join(before, kept)).st_ino == os.stat(os.path.join(after, kept)).st_ino


def test_rot_in_a_kept_file_is_never_certified(mirror, tmp_path):
    root = tmp_path / 'shared'
    assert sync(root, mirror, '--databases', SUBSET).returncode == 0
    before = current(root)
    fasta = os.path.join(before, 'mgnify', 'mgy_clusters_2022_05.fa')
    blob = bytearray(open(fasta, 'rb').read())
    blob[10] ^= 1                                    # rot: same size, another byte
    open(fasta, 'wb').write(bytes(blob))
    res = sync(root, mirror, '--databases', SUBSET)  # default --verify size cannot see it ...
    clean(res)
    assert res.returncode == 0 and 'up to date' in res.stdout and current(root) == before
    res = data('verify', '--data-root', root)        # ... and does not hide it
    assert res.returncode == 6 and 'mgnify/mgy_clusters_2022_05.fa: checksum differs' in res.stdout
    with open(os.path.join(before, 'uniref90', 'uniref90.fasta'), 'ab') as f:
        f.truncate(100)
    assert sync(root, mirror, '--databases', 'uniref90').returncode == 0      # a new version, mgnify kept
    assert current(root) != before
    res = data('verify', '--data-root', root)
    assert res.returncode == 6 and 'mgnify/mgy_clusters_2022_05.fa: checksum differs' in res.stdout
    assert 'uniref90' not in res.stdout
    res = sync(root, mirror, '--databases', SUBSET, '--verify', 'full')    # the repair
    assert res.returncode == 0 and data('verify', '--data-root', root).returncode == 0


# ---- Locks, publish, prune ----------------------------------------------------------------------

def hold_lock(directory, seconds):
    """Another holder of DIRECTORY/.lock for a while (flock(1), as a second command would be);
    returns once it holds the lock."""
    os.makedirs(str(directory), exist_ok=True)
    holder = subprocess.Popen(['flock', str(directory / '.lock'), 'sleep', str(seconds)])
    with open(str(directory / '.lock'), 'a') as probe:
        while True:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(probe, fcntl.LOCK_UN)          # not taken yet
                time.sleep(0.05)
            except BlockingIOError:
                return holder


def publish_tree(tmp_path, root, name, mgnify=b'>m\nMKV\n', big=0):
    """A small real tree published with `publish --from`; returns the version directory."""
    tree = tmp_path / name
    (tree / 'uniref90').mkdir(parents=True)
    (tree / 'mgnify').mkdir()
    (tree / 'uniref90' / 'uniref90.fasta').write_bytes(b'>u\nMKVLA\n' + os.urandom(big))
    (tree / 'mgnify' / 'mgy_clusters_2022_05.fa').write_bytes(mgnify)
    res = data('publish', '--data-root', root, '--from', tree, '--databases', 'uniref90,mgnify')
    assert res.returncode == 0, clean(res)
    return current(root)


def test_commands_that_change_the_shared_tree_wait_for_its_lock_and_sync_steps_aside(tmp_path):
    root = tmp_path / 'shared'
    publish_tree(tmp_path, root, 'v1')
    holder = hold_lock(root, 2)
    started = time.time()
    res = data('sync', '--data-root', root, '--mirror', 'http://127.0.0.1:9', '--databases', 'uniref90')
    assert res.returncode == 0 and 'holds %s/.lock; exiting' % root in clean(res)
    assert time.time() - started < 1.5
    res = data('prune', '--data-root', root, '--keep', '1')
    holder.wait()
    assert res.returncode == 0 and 'waiting for %s/.lock' % root in clean(res)
    assert time.time() - started >= 1.5


def test_publish_from_another_file_system_copies_and_moves_only_when_asked(tmp_path, mount_tmpfs):
    other = mount_tmpfs('size=8m')
    root = tmp_path / 'shared'
    source = publish_tree(other, root, 'tree')          # built on the tmpfs, published into tmp_path
    assert source.startswith(str(root))
    assert (other / 'tree' / 'uniref90' / 'uniref90.fasta').read_bytes().startswith(b'>u\n')   # left alone
    (other / 'tree' / 'mgnify' / 'mgy_clusters_2022_05.fa').write_text('>changed\nMKV\n')
    res = data('publish', '--data-root', root, '--from', other / 'tree', '--databases', 'uniref90,mgnify', '--move')
    assert res.returncode == 0, clean(res)
    assert not (other / 'tree').exists()                # moved: copied across, then removed
    assert data('verify', '--data-root', root).returncode == 0
    assert (root / 'current' / 'mgnify' / 'mgy_clusters_2022_05.fa').read_text() == '>changed\nMKV\n'


@pytest.mark.parametrize('case', ['setuid', 'fifo'])
def test_publish_from_refuses_setuid_files_and_fifos(tmp_path, case):
    tree = tmp_path / 'pubsrc'
    (tree / 'pdb_seqres').mkdir(parents=True)
    (tree / 'pdb_seqres' / 'pdb_seqres.txt').write_text('>101m_A mol:protein length:8  MYOGLOBIN\nMVLSEGEW\n')
    if case == 'setuid':
        bad, problem = tree / 'pdb_seqres' / 'suid', 'setuid or setgid'
        shutil.copy('/bin/true', str(bad))
        os.chmod(str(bad), 0o4755)
    else:
        bad, problem = tree / 'pdb_seqres' / '.fifo', 'not a regular file'     # dot-names too
        os.mkfifo(str(bad))
    root = tmp_path / 'shared'
    res = data('publish', '--data-root', root, '--from', tree, '--databases', 'pdb_seqres')
    assert res.returncode == 6, clean(res)
    assert '%s is %s' % (bad, problem) in res.stderr and 'chmod ug-s' in res.stderr
    assert not (root / 'current').exists() and not glob.glob(str(root / '.tmp-*'))
    assert os.path.lexists(str(bad))


def test_a_failed_publish_loses_neither_the_source_nor_the_download(tmp_path, mount_tmpfs):
    root = mount_tmpfs('size=256k')
    (root / '.incoming').mkdir()
    (root / '.incoming' / 'downloaded').write_text('hours of downloads')
    tree = tmp_path / 'tree'
    (tree / 'uniref90').mkdir(parents=True)
    (tree / 'mgnify').mkdir()
    (tree / 'uniref90' / 'uniref90.fasta').write_bytes(os.urandom(1 << 20))     # does not fit
    (tree / 'mgnify' / 'mgy_clusters_2022_05.fa').write_text('>m\nMKV\n')
    for move in ([], ['--move']):
        res = data('publish', '--data-root', root, '--from', tree, '--databases', 'uniref90,mgnify', *move)
        assert res.returncode == 5 and 'no space left' in clean(res)
        assert os.path.getsize(str(tree / 'uniref90' / 'uniref90.fasta')) == 1 << 20
        assert (root / '.incoming' / 'downloaded').read_text() == 'hours of downloads'
        assert not (root / 'current').exists() and not glob.glob(str(root / '.tmp-*'))


# ---- Stage: a tampered shared tree ---------------------------------------------------------------

@pytest.mark.parametrize('case', ['dotdot id', 'absolute id', 'link elsewhere', 'path in manifest'])
def test_stage_refuses_ids_and_paths_that_leave_its_tree(tmp_path, case):
    root, local = tmp_path / 'shared', tmp_path / 'local'
    version = publish_tree(tmp_path, root, 'v1')
    precious = tmp_path / 'precious'
    precious.mkdir()
    (precious / 'keep.txt').write_text('keep')
    (precious / 'uniref90').write_text('a file where rsync wants a directory')   # makes a copy there fail
    if case == 'dotdot id':
        open(os.path.join(version, 'manifest.id'), 'w').write('../precious\n')
    elif case == 'absolute id':
        open(os.path.join(version, 'manifest.id'), 'w').write('%s\n' % precious)
    elif case == 'link elsewhere':
        os.unlink(str(root / 'current'))
        os.symlink('../precious', str(root / 'current'))
    else:
        record = json.load(open(os.path.join(version, 'manifest.json')))
        record['files']['../../precious/keep.txt'] = {'size': 4, 'sha256': hashlib.sha256(b'keep').hexdigest()}
        json.dump(record, open(os.path.join(version, 'manifest.json'), 'w'))
    res = data('stage', '--data-root', root, '--local-root', local)
    assert res.returncode == 6, clean(res)
    assert 'tampered' in clean(res)
    assert sorted(os.listdir(str(precious))) == ['keep.txt', 'uniref90']
    assert os.listdir(str(local)) == ['.lock']


def test_stage_copies_exactly_the_manifest_as_plain_files(tmp_path):
    root, local = tmp_path / 'shared', tmp_path / 'local'
    version = publish_tree(tmp_path, root, 'v1')
    recorded = set(json.load(open(os.path.join(version, 'manifest.json')))['files'])
    os.makedirs(os.path.join(version, 'evil'))
    open(os.path.join(version, 'evil', 'tool'), 'w').write('#!/bin/sh\n')
    os.chmod(os.path.join(version, 'evil', 'tool'), 0o4755)
    open(os.path.join(version, 'uniref90', 'extra.bin'), 'w').write('not in the manifest')
    os.symlink('/etc/shadow', os.path.join(version, 'uniref90', 'shadow'))
    os.chmod(os.path.join(version, 'uniref90', 'uniref90.fasta'), 0o4755)   # a setuid file of another owner
    os.chown(os.path.join(version, 'uniref90', 'uniref90.fasta'), ATTACKER, GID)
    res = data('stage', '--data-root', root, '--local-root', local)
    assert res.returncode == 0, clean(res)
    copy = os.path.realpath(str(local / 'current'))
    found = {os.path.relpath(p, copy) for p, mode in walk_modes(copy) if not stat.S_ISDIR(mode)}
    assert found == recorded | {'manifest.json', 'manifest.id', 'staged.id'}
    for path, mode in walk_modes(copy):
        assert not mode & 0o6000 and os.lstat(path).st_uid == 0, path


def test_stage_never_follows_a_linked_directory_out_of_the_shared_tree(tmp_path):
    root, local = tmp_path / 'shared', tmp_path / 'local'
    version = publish_tree(tmp_path, root, 'v1')
    secret = tmp_path / 'secretdir'
    secret.mkdir()
    size = os.path.getsize(os.path.join(version, 'uniref90', 'uniref90.fasta'))
    (secret / 'uniref90.fasta').write_bytes(b'S' * size)          # only its size need be known
    shutil.rmtree(os.path.join(version, 'uniref90'))
    os.symlink(str(secret), os.path.join(version, 'uniref90'))
    for _ in range(2):
        res = data('stage', '--data-root', root, '--local-root', local)
        assert res.returncode == 6, clean(res)
        assert 'uniref90 is a symbolic link to %s, not a directory inside the tree' % secret in res.stderr, res.stderr
        assert os.listdir(str(local)) == ['.lock']


def two_stages_at_once(root, local, hold):
    """Two stages started while a third holder has LOCAL/.lock for `hold` seconds: their exit
    statuses and outputs."""
    holder = hold_lock(local, hold)
    stages = [subprocess.Popen([sys.executable, '-m', 'data_sync', 'stage', '--data-root', str(root), '--local-root',
                                str(local)], cwd=CODE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True, env=dict(os.environ, ALPHAFOLD_SITE_CONFIG=''))
              for _ in range(2)]
    outs = [p.communicate()[0] for p in stages]
    holder.wait()
    return [p.returncode for p in stages], outs


def rot(path):
    """One flipped byte, same size and modification time: what rsync's quick check cannot see."""
    info = os.stat(path)
    with open(path, 'r+b') as f:
        f.seek(info.st_size // 2)
        byte = f.read(1)[0]
        f.seek(info.st_size // 2)
        f.write(bytes([byte ^ 1]))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def test_stage_never_certifies_a_rotted_shared_copy(tmp_path):
    root, local = tmp_path / 'shared', tmp_path / 'local'
    version = publish_tree(tmp_path, root, 'v1')
    rot(os.path.join(version, 'uniref90', 'uniref90.fasta'))
    for _ in range(2):                                # the rerun that its message once advised
        res = data('stage', '--data-root', root, '--local-root', local)
        assert res.returncode == 6, clean(res)
        assert 'the shared copy %s does not match its manifest' % version in res.stderr, res.stderr
        assert 'uniref90/uniref90.fasta: checksum differs' in res.stderr and 'sync --verify full' in res.stderr
        assert os.listdir(str(local)) == ['.lock']    # the failed copy is gone, nothing stamped
    codes, outs = two_stages_at_once(root, local, 1)  # the second waits, then must not accept it either
    assert codes == [6, 6] and all('the shared copy' in o and 'Traceback' not in o for o in outs), outs
    assert os.listdir(str(local)) == ['.lock']
    res = data('status', '--data-root', root, '--local-root', local, '--databases', 'uniref90')
    assert 'no verified node-local copy' in res.stdout


def test_a_copy_left_by_a_killed_stage_is_checksummed_not_trusted(tmp_path):
    root, local = tmp_path / 'shared', tmp_path / 'local'
    publish_tree(tmp_path, root, 'v1')
    assert data('stage', '--data-root', root, '--local-root', local).returncode == 0
    copy = os.path.realpath(str(local / 'current'))
    os.unlink(str(local / 'current'))                 # killed before it stamped and switched ...
    os.unlink(os.path.join(copy, 'staged.id'))
    rot(os.path.join(copy, 'uniref90', 'uniref90.fasta'))     # ... with a file damaged on the local disk
    res = data('stage', '--data-root', root, '--local-root', local)
    assert res.returncode == 6, clean(res)
    assert 'node-local copy %s does not match' % copy in res.stderr and 'check the local disk' in res.stderr
    assert not os.path.exists(copy)
    res = data('stage', '--data-root', root, '--local-root', local)
    assert res.returncode == 0, clean(res)
    assert data('verify', '--data-root', local).returncode == 0


def test_two_stages_at_once_take_turns(tmp_path):
    root, local = tmp_path / 'shared', tmp_path / 'local'
    version = publish_tree(tmp_path, root, 'v1', big=30 << 20)
    codes, outs = two_stages_at_once(root, local, 3)
    assert codes == [0, 0], outs
    assert all('Traceback' not in o and 'waiting for %s/.lock' % local in o for o in outs), outs
    assert sum('is current' in o for o in outs) == 1                 # the second found the copy done
    res = data('status', '--data-root', root, '--local-root', local, '--databases', 'uniref90,mgnify')
    assert res.returncode == 0 and 'matches manifest' in res.stdout
    assert not glob.glob(os.path.join(version, '.in-use*'))           # each removed its own marker


def test_stage_from_a_read_only_shared_copy(tmp_path, mount_tmpfs):
    root, local = mount_tmpfs('size=8m'), tmp_path / 'local'
    publish_tree(tmp_path, root, 'v1')
    subprocess.run(['mount', '-o', 'remount,ro', str(root)], check=True)
    res = data('stage', '--data-root', root, '--local-root', local)
    assert res.returncode == 0, clean(res)
    assert 'not marking' in res.stdout
    assert data('status', '--data-root', root, '--local-root', local, '--databases', 'uniref90').returncode == 0


def test_stage_keeps_the_current_and_the_previous_local_copy(tmp_path):
    root, local = tmp_path / 'shared', tmp_path / 'local'
    (local / 'lost+found').mkdir(parents=True)
    staged = []
    for i in range(3):
        publish_tree(tmp_path, root, 'v%d' % i, mgnify=b'>m%d\nMKV\n' % i)
        res = data('stage', '--data-root', root, '--local-root', local)
        assert res.returncode == 0, clean(res)
        staged.append(os.path.basename(os.path.realpath(str(local / 'current'))))
    assert sorted(os.listdir(str(local))) == sorted(['.lock', 'current', 'lost+found'] + staged[1:])


# ---- The feature cache --------------------------------------------------------------------------

def test_a_cache_on_a_full_disk_does_not_fail_the_run(data_dir, targets, tmp_path, mount_tmpfs):
    cache = mount_tmpfs('size=8k')
    res = run('fold_runtime', 'msa', '--fasta', targets['conotoxin'], '--output-dir', tmp_path / 'out',
              '--data-dir', data_dir, '--db-preset', 'reduced_dbs', '--feature-cache', cache)
    out = clean(res)
    assert res.returncode == 0, out
    assert 'not added to the feature cache' in out and (tmp_path / 'out' / 'conotoxin' / 'features.pkl').exists()


@pytest.fixture
def group_site(data_dir, targets):
    """Databases, targets, an admin-made cache directory of group GID (setgid, sticky, group
    writable) and per-user homes and output directories, all where VICTIM and ATTACKER can reach."""
    base = tempfile.mkdtemp(prefix='af-trust-', dir='/tmp')
    os.chmod(base, 0o755)
    shutil.copytree(data_dir, os.path.join(base, 'data'))
    cache = os.path.join(base, 'cache')
    os.mkdir(cache)
    os.chown(cache, 0, GID)
    os.chmod(cache, 0o3775)
    os.mkdir(os.path.join(base, 'markers'), 0o777)
    os.chmod(os.path.join(base, 'markers'), 0o777)
    for uid in (VICTIM, ATTACKER):
        for d in ('home-%d' % uid, 'out-%d' % uid):
            os.mkdir(os.path.join(base, d))
            os.chown(os.path.join(base, d), uid, GID)
    yield base
    shutil.rmtree(base)


def msa(site, uid, target, out, umask=0o022, cache=True):
    res = run('fold_runtime', 'msa', '--fasta', os.path.join(site, 'data', 'targets', target + '.fasta'),
              '--output-dir', os.path.join(site, 'out-%d' % uid, out), '--data-dir', os.path.join(site, 'data'),
              '--db-preset', 'reduced_dbs', *(('--feature-cache', os.path.join(site, 'cache')) if cache else ()),
              user=uid, umask=umask, home=os.path.join(site, 'home-%d' % uid))
    return res, clean(res)


def features_of(site, uid, out, target):
    with open(os.path.join(site, 'out-%d' % uid, out, target, 'features.pkl'), 'rb') as f:
        return pickle.load(f)


def python_as(uid, site, code, *args):
    """A snippet run as uid (the attacker's own tools); its stdout."""
    res = subprocess.run(as_user(uid, [sys.executable, '-c', code] + [str(a) for a in args]), cwd=CODE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                         env=dict(os.environ, HOME=os.path.join(site, 'home-%d' % uid)))
    assert res.returncode == 0, res.stdout
    return res.stdout


REPLACE = r'''
import json, os, shutil, sys
entry = sys.argv[1]
shard = os.path.dirname(entry)
attempts = {
    'rename the entry': lambda: os.rename(entry, entry + '.old'),
    'delete the entry': lambda: shutil.rmtree(entry),
    'rename the shard': lambda: os.rename(shard, shard + '.old'),
    'overwrite the arrays': lambda: open(os.path.join(entry, 'features.npz'), 'r+b').write(b'x'),
    'make the arrays writable': lambda: os.chmod(os.path.join(entry, 'features.npz'), 0o666),
    'add a file': lambda: open(os.path.join(entry, 'msas', 'extra.sto'), 'w'),
    'replace entry.json': lambda: os.rename(os.path.join(entry, 'features.npz'), os.path.join(entry, 'entry.json')),
}
result = {}
for what, attempt in attempts.items():
    try:
        attempt()
        result[what] = 'done'
    except OSError as exc:
        result[what] = type(exc).__name__
print(json.dumps(result))
'''


def test_a_group_member_cannot_replace_another_members_entry(group_site):
    res, out = msa(group_site, VICTIM, 'e2_dbd', 'first', umask=0o007)
    assert res.returncode == 0, out
    entry = glob.glob(os.path.join(group_site, 'cache', '*', '*'))[0]
    for path, mode in [(entry, os.lstat(entry).st_mode)] + list(walk_modes(entry)):                # umask 007: nothing for "other"
        assert not mode & 0o007 and os.lstat(path).st_uid == VICTIM, (path, oct(mode))
    result = json.loads(python_as(ATTACKER, group_site, REPLACE, entry).splitlines()[-1])
    assert set(result.values()) == {'PermissionError'}, result
    res, out = msa(group_site, VICTIM, 'e2_dbd', 'again')
    assert res.returncode == 0 and 'features from the shared cache' in out, out
    assert_same_features(features_of(group_site, VICTIM, 'again', 'e2_dbd'),
                         features_of(group_site, VICTIM, 'first', 'e2_dbd'))


PLANT = r'''
import json, os, pickle, shutil, sys
entry, tdir, marker = sys.argv[1:4]
features = open(os.path.join(tdir, 'features.pkl'), 'rb').read()

class Payload(object):     # unpickling it touches the marker, then returns the real features
    def __reduce__(self):
        return eval, ("__import__('pathlib').Path(%r).touch() or __import__('pickle').loads(%r)" % (marker, features),)

if sys.argv[4] == 'pickle':           # the entry format of the kit before 0.1.1: a pickle and its meta
    os.makedirs(entry)
    shutil.copytree(os.path.join(tdir, 'msas'), os.path.join(entry, 'msas'))
    shutil.copy(os.path.join(tdir, 'features.meta.json'), entry)
    with open(os.path.join(entry, 'features.pkl'), 'wb') as f:
        pickle.dump(Payload(), f)
else:                                 # today's format, made by the kit, then given an object array
    from fold_runtime import meta
    from fold_runtime.cpu_stage import feature_cache
    import numpy as np
    feats = pickle.loads(features)
    assert feature_cache.store(os.path.dirname(os.path.dirname(entry)), meta.load(tdir), feats,
                               os.path.join(tdir, 'msas'))
    os.chmod(entry, 0o755)
    npz = os.path.join(entry, 'features.npz')
    os.chmod(npz, 0o644)
    arrays = dict(np.load(npz))
    arrays['msa'] = np.array([Payload()], dtype=object)
    with open(npz, 'wb') as f:
        np.savez(f, **arrays)
    record = json.load(open(os.path.join(entry, 'entry.json')))
    record['files']['features.npz'] = __import__('hashlib').sha256(open(npz, 'rb').read()).hexdigest()
    os.chmod(os.path.join(entry, 'entry.json'), 0o644)
    json.dump(record, open(os.path.join(entry, 'entry.json'), 'w'))
    for path in (npz, os.path.join(entry, 'entry.json')):
        os.chmod(path, 0o444)
    os.chmod(entry, 0o755)
'''
ENTRY_OF = ('import json, sys\nfrom fold_runtime.cpu_stage import feature_cache\n'
            'print(feature_cache.entry_dir(sys.argv[1], json.load(open(sys.argv[2]))))')


@pytest.mark.parametrize('kind', ['pickle', 'npz with an object array'])
def test_a_planted_entry_is_a_miss_and_none_of_its_code_runs(group_site, kind):
    res, out = msa(group_site, ATTACKER, 'conotoxin', 'own', cache=False)      # the attacker's own run
    assert res.returncode == 0, out
    tdir = os.path.join(group_site, 'out-%d' % ATTACKER, 'own', 'conotoxin')
    entry = python_as(ATTACKER, group_site, ENTRY_OF, os.path.join(group_site, 'cache'),
                      os.path.join(tdir, 'features.meta.json')).strip()
    marker = os.path.join(group_site, 'markers', 'attacker-code-ran')
    python_as(ATTACKER, group_site, PLANT, entry, tdir, marker, kind.split()[0])
    res, out = msa(group_site, VICTIM, 'conotoxin', 'victim')
    assert res.returncode == 0, out
    assert not os.path.exists(marker)
    assert 'not used' in out and 'started: jackhmmer' in out          # a logged miss, then the CPU stage
    assert_same_features(features_of(group_site, VICTIM, 'victim', 'conotoxin'),
                         features_of(group_site, ATTACKER, 'own', 'conotoxin'))


def test_bit_rot_in_an_entry_is_a_miss_and_the_stage_recomputes(data_dir, targets, tmp_path):
    cache = tmp_path / 'cache'
    args = ('--fasta', targets['conotoxin'], '--data-dir', data_dir, '--db-preset', 'reduced_dbs', '--feature-cache', cache)
    assert run('fold_runtime', 'msa', '--output-dir', tmp_path / 'a', *args).returncode == 0
    npz = glob.glob(str(cache / '*' / '*' / 'features.npz'))[0]
    blob = bytearray(open(npz, 'rb').read())
    blob[len(blob) // 2] ^= 1
    open(npz, 'wb').write(bytes(blob))
    res = run('fold_runtime', 'msa', '--output-dir', tmp_path / 'b', *args)
    out = clean(res)
    assert res.returncode == 0 and 'does not match its SHA-256' in out and 'started: jackhmmer' in out, out
    assert 'replacing the broken feature cache entry' in out
    with open(str(tmp_path / 'a' / 'conotoxin' / 'features.pkl'), 'rb') as f, \
            open(str(tmp_path / 'b' / 'conotoxin' / 'features.pkl'), 'rb') as g:
        assert_same_features(pickle.load(g), pickle.load(f))
    res = run('fold_runtime', 'msa', '--output-dir', tmp_path / 'c', *args)     # the replaced entry serves
    assert res.returncode == 0 and 'features from the shared cache' in clean(res), clean(res)


# ---- The GPU stage's features.pkl ---------------------------------------------------------------

SWAP_PICKLE = r'''
import os, pickle, sys
class Payload(object):     # unpickling it touches the marker
    def __reduce__(self):
        return eval, ("__import__('pathlib').Path(%r).touch() or {}" % sys.argv[2],)
with open(sys.argv[1] + '.new', 'wb') as f:
    pickle.dump(Payload(), f)
os.replace(sys.argv[1] + '.new', sys.argv[1])
'''


def test_predict_reads_only_its_own_features_in_a_shared_project_directory(group_site):
    """A group's project directory (setgid, group-writable, not sticky) and umask 002: a member's own
    features.pkl is read; after another member swaps in a pickle of their own between the stages,
    neither that member's victim nor root unpickles it."""
    project = os.path.join(group_site, 'project')
    os.mkdir(project)
    os.chown(project, 0, GID)
    os.chmod(project, 0o2775)
    home = os.path.join(group_site, 'home-%d' % VICTIM)
    res = run('fold_runtime', 'msa', '--fasta', os.path.join(group_site, 'data', 'targets', 'conotoxin.fasta'),
              '--output-dir', project, '--data-dir', os.path.join(group_site, 'data'), '--db-preset', 'reduced_dbs',
              user=VICTIM, umask=0o002, home=home)
    assert res.returncode == 0, clean(res)
    tdir = os.path.join(project, 'conotoxin')

    def predict(user):   # no weights: the GPU stage stops after reading the features, before any model
        return run('fold_runtime', 'predict', '--target-dir', tdir, '--compile-cache-dir', os.path.join(home, 'jax'),
                   user=user, umask=0o002, home=home)
    res = predict(VICTIM)
    assert res.returncode == 3 and 'no data directory given for the weights' in clean(res), clean(res)
    os.chmod(os.path.join(tdir, 'features.pkl'), 0o664)   # the member's own, but any member may write it
    res = predict(VICTIM)
    assert res.returncode == 2 and 'may be written by others (mode 664)' in clean(res), clean(res)
    marker = os.path.join(group_site, 'markers', 'attacker-code-ran')
    python_as(ATTACKER, group_site, SWAP_PICKLE, os.path.join(tdir, 'features.pkl'), marker)
    for user in (VICTIM, None):   # None: root
        res = predict(user)
        out = clean(res)
        assert res.returncode == 2 and 'features.pkl belongs to uid %d' % ATTACKER in out, out
        assert 'copy the target directory' in out and not os.path.exists(marker)
