"""Node-local staging: copy the shared `current` version to LOCAL/<id> with rsync, verify it,
stamp it, then switch LOCAL/current. Unchanged files are hard-linked from the previous local
version (--link-dest), so re-staging costs almost nothing and a job reading the old version
keeps working.
"""
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

from data_sync import layout, manifest, store
from kit_common import tools
from kit_common.errors import EXIT_MISSING, EXIT_MISMATCH, KitError
from kit_common.files import write_text

log = logging.getLogger(__name__)


def stage(shared_root, local_root, jobs=4):
    """Returns the number of files rsync transferred (0 when the local copy was already current)."""
    if not shutil.which('rsync'):
        raise KitError('rsync not found on PATH (stage copies with rsync)', 'install the "rsync" package', EXIT_MISSING)
    ident, source = store.current_version(shared_root)
    if not source:
        raise KitError('%s has no published version (no current link)' % shared_root,
                       'run alphafold-data sync on the shared copy first', EXIT_MISSING)
    wanted = manifest.load(source)
    if wanted is None:
        raise KitError('%s has no manifest' % source, 'run alphafold-data publish on the shared copy', EXIT_MISSING)
    os.makedirs(local_root, exist_ok=True)
    local_id, local_dir = store.current_version(local_root)
    if local_id == ident and layout.read_id(os.path.join(local_dir, layout.STAMP_FILE)) == ident \
            and not manifest.verify(local_dir, wanted, checksum=()):
        log.info('node-local copy %s is current (%s)', local_dir, ident)
        return 0
    target = os.path.join(local_root, ident)
    marker = os.path.join(source, store.IN_USE_FILE)
    write_text(marker, '%d\n' % os.getpid())       # prune keeps a version a stage is reading
    try:
        tops = sorted(n for n in os.listdir(source) if not n.startswith('.'))
        link_dest = local_dir if local_dir and local_dir != target else None
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            changed = [f for files in pool.map(lambda n: _rsync(source, target, n, link_dest), tops) for f in files]
    except KitError:
        if os.path.realpath(target) != (local_dir or ''):
            shutil.rmtree(target, ignore_errors=True)   # the previous version stays current
        raise
    finally:
        os.unlink(marker)
    problems = manifest.verify(target, wanted, checksum=set(changed))
    if problems:
        raise KitError('node-local copy %s does not match the manifest:\n    %s' % (target, '\n    '.join(problems[:10])),
                       'rerun alphafold-data stage; if it persists, check the local disk', EXIT_MISMATCH)
    write_text(os.path.join(target, layout.STAMP_FILE), ident + '\n')
    store.switch_current(local_root, target)
    log.info('staged %s to %s: %d files copied, %d verified by size', ident, target, len(changed), len(wanted['files']))
    return len(changed)


def _rsync(source, target, name, link_dest):
    os.makedirs(target, exist_ok=True)
    src = os.path.join(source, name)
    cmd = ['rsync', '-a', '--delete', '--out-format=%n']
    if link_dest:
        cmd.append('--link-dest=%s' % os.path.join(link_dest, name if os.path.isdir(src) else ''))
    cmd += [src + ('/' if os.path.isdir(src) else ''), os.path.join(target, name) + ('/' if os.path.isdir(src) else '')]
    res = tools.run(cmd, 'rsync of %s' % name, 'check both file systems and rerun',
                    install_hint='install the "rsync" package', full_fix='free space on the node-local disk')
    prefix = name + '/' if os.path.isdir(src) else ''
    return [prefix + line for line in res.stdout.splitlines() if line and not line.endswith('/')]
