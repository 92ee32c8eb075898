"""Node-local staging: copy the shared `current` version to LOCAL/<id> with rsync, verify it,
stamp it, then switch LOCAL/current. Unchanged files are hard-linked from the previous local
version (--link-dest), so re-staging costs almost nothing and a job reading the old version
keeps working.

Stage often runs as root while others can write the shared tree, so: the id and the link are
checked before they become paths (store.current_version), exactly the manifest's files are
copied (rsync --files-from), as regular files without their owners or setuid bits, and nothing
outside LOCAL is ever written or removed. One stage at a time per node (LOCAL/.lock).

Only a verified copy is stamped (staged.id), and any failure removes the new copy: a rerun, or a
stage that waited on the lock, starts afresh instead of trusting a failed copy by its sizes.
"""
import logging
import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor

from data_sync import layout, manifest, store
from kit_common import files, locks, tools
from kit_common.errors import EXIT_MISSING, EXIT_MISMATCH, KitError
from kit_common.files import write_text

log = logging.getLogger(__name__)
KEEP_LOCAL = 2     # the current copy and the one before it (jobs that started on it)


def stage(shared_root, local_root, jobs=4):
    """Returns the number of files rsync transferred (0 when the local copy was already current)."""
    if not shutil.which('rsync'):
        raise KitError('rsync not found on PATH (stage copies with rsync)', 'install the "rsync" package', EXIT_MISSING)
    files.make_dirs(local_root)
    with locks.exclusive(local_root, 'alphafold-data stage'):
        copied = _stage(shared_root, local_root, jobs)
        store.prune(local_root, KEEP_LOCAL, local=True)
    return copied


def _stage(shared_root, local_root, jobs):
    ident, source = store.current_version(shared_root)
    if not source:
        raise KitError('%s has no published version (no current link)' % shared_root,
                       'run alphafold-data sync on the shared copy first', EXIT_MISSING)
    wanted = manifest.load(source)
    if wanted is None:
        raise KitError('%s has no manifest' % source, 'run alphafold-data publish on the shared copy', EXIT_MISSING)
    if wanted['id'] != ident:
        raise KitError('%s: manifest.json is version %s but manifest.id says %s' % (source, wanted['id'], ident),
                       'republish the shared copy (alphafold-data sync)', EXIT_MISMATCH)
    local_id, local_dir = store.current_version(local_root)
    if local_id == ident and _stamped(local_dir, ident) and not manifest.verify(local_dir, wanted, checksum=()):
        log.info('node-local copy %s is current (%s)', local_dir, ident)
        return 0
    target = os.path.join(local_root, ident)
    # An unstamped target is what a failed or killed attempt left: rsync's quick check (size and
    # time) would skip its files, so every file is checksummed, none trusted by its size.
    leftover = os.path.isdir(target) and not _stamped(target, ident)
    link_dest = local_dir if local_dir and local_dir != os.path.realpath(target) else None
    try:
        files.remove(os.path.join(target, layout.STAMP_FILE))   # unstamped until verified again
        with store.in_use(source):     # prune on the shared copy keeps what a stage reads
            _refuse_links(source, wanted)
            changed = _copy(source, target, wanted, link_dest, jobs)
            _verify(shared_root, source, target, wanted, None if leftover else set(changed))
        write_text(os.path.join(target, layout.STAMP_FILE), ident + '\n')
        store.switch_current(local_root, target)
    except BaseException:
        if os.path.realpath(target) != local_dir:        # never the current copy: jobs read it
            shutil.rmtree(target, ignore_errors=True)    # target is LOCAL/<checked id>
        raise
    log.info('staged %s to %s: %d files copied, %s checksummed, all %d sized', ident, target, len(changed),
             'all' if leftover else len(changed), len(wanted['files']))
    return len(changed)


def _stamped(directory, ident):
    return layout.read_id(os.path.join(directory, layout.STAMP_FILE)) == ident


def _verify(shared_root, source, target, wanted, checksum):
    """Check the copy (SHA-256 of the paths in checksum, of all when None); where it is wrong,
    check those files in the shared copy too, so that the message blames the right one."""
    found = list(manifest.problems(target, wanted, checksum))
    if not found:
        return
    shared = manifest.verify(source, {'files': {rel: wanted['files'][rel] for rel, _ in found}})
    if shared:
        raise KitError('the shared copy %s does not match its manifest (nothing was staged):\n    %s'
                       % (source, '\n    '.join(shared[:10])),
                       'repair the shared copy: alphafold-data verify --data-root %s lists the damage and '
                       'alphafold-data sync --verify full fetches it again; then rerun alphafold-data stage'
                       % shared_root, EXIT_MISMATCH)
    raise KitError('node-local copy %s does not match the manifest (the shared copy does):\n    %s'
                   % (target, '\n    '.join(manifest.describe(found[:10]))),
                   'rerun alphafold-data stage; if it persists, check the local disk', EXIT_MISMATCH)


def _refuse_links(source, wanted):
    """Every manifest path must lead through real directories to a regular file: rsync, often run
    as root, would follow a linked directory out of the shared tree and copy what lies there.
    (A link swapped in after this check still meets the SHA-256 of every copied file.)"""
    checked = set()
    for rel in wanted['files']:
        parts = rel.split('/')
        for depth in range(1, len(parts) + 1):
            sub = '/'.join(parts[:depth])
            if sub in checked:
                continue
            checked.add(sub)
            want = 'a regular file' if depth == len(parts) else 'a directory'
            found = _kind(os.path.join(source, sub))
            if found != want:
                raise KitError('the shared copy %s: %s is %s, not %s inside the tree (nothing was staged)'
                               % (source, sub, found, want),
                               'a published version holds real directories and regular files only: replace %s '
                               'with what it stands for, or republish the version (alphafold-data sync or publish); '
                               'then rerun alphafold-data stage' % sub, EXIT_MISMATCH)


def _kind(path):
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return 'missing'
    if stat.S_ISLNK(mode):
        return 'a symbolic link to %s' % os.readlink(path)
    return 'a directory' if stat.S_ISDIR(mode) else 'a regular file' if stat.S_ISREG(mode) else 'a special file'


def _copy(source, target, wanted, link_dest, jobs):
    """rsync the manifest's files (and the manifest), one database directory per job; returns the
    paths rsync transferred."""
    groups = {}
    for rel in sorted(wanted['files']):
        groups.setdefault(rel.split('/', 1)[0], []).append(rel)
    groups[''] = [manifest.MANIFEST_FILE, layout.MANIFEST_ID_FILE]
    files.make_dirs(target)
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return [f for done in pool.map(lambda g: _rsync(source, target, g, link_dest), groups.values()) for f in done]


def _rsync(source, target, paths, link_dest):
    # No -a: -l, -D, -p, -o and -g would recreate links, devices, setuid bits and the owners that
    # whoever wrote the shared tree chose. --times keeps the quick check (and --link-dest) working.
    cmd = ['rsync', '--times', '--from0', '--files-from=-', '--out-format=%n']
    if link_dest:
        cmd.append('--link-dest=%s' % link_dest)
    cmd += [source + '/', target + '/']
    res = tools.run(cmd, 'rsync of %s' % paths[0].split('/', 1)[0], 'check both file systems and rerun',
                    install_hint='install the "rsync" package', full_fix='free space on the node-local disk',
                    input='\0'.join(paths))
    return [line for line in res.stdout.splitlines() if line and not line.endswith('/')]
