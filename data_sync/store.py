"""Versioned copies: ROOT/versions/<id>, and a `current` symlink switched atomically.

Used for the shared copy (publish) and for node-local copies (stage): a reader that resolved
`current` keeps reading its version while a new one is switched in.
"""
import logging
import os
import shutil
import time

from data_sync import layout
from kit_common import files

log = logging.getLogger(__name__)


def current_version(root):
    """(version id, directory) that ROOT/current points to, or (None, None)."""
    link = os.path.join(root, 'current')
    if not os.path.islink(link):
        return None, None
    target = os.path.realpath(link)
    return layout.read_id(os.path.join(target, layout.MANIFEST_ID_FILE)) or os.path.basename(target), target


def switch_current(root, target_dir):
    """Point ROOT/current at target_dir in one rename: readers see the old or the new, never neither."""
    tmp = os.path.join(root, '.current-%d' % os.getpid())
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.relpath(target_dir, root), tmp)
    os.replace(tmp, os.path.join(root, 'current'))


def publish(root, incoming, ident):
    """Move a verified tree to ROOT/versions/<id> and make it current."""
    versions = os.path.join(root, 'versions')
    os.makedirs(versions, exist_ok=True)
    final = os.path.join(versions, ident)
    if os.path.exists(final):          # the same content again (a repaired copy): a new directory
        final = '%s.%s' % (final, time.strftime('%Y%m%d%H%M%S'))
    files.publish_dir(incoming, final)
    switch_current(root, final)
    return final


def versions(root):
    """Published version directories, oldest first."""
    d = os.path.join(root, 'versions')
    if not os.path.isdir(d):
        return []
    paths = [os.path.join(d, n) for n in os.listdir(d) if not n.startswith('.')]
    return sorted(paths, key=os.path.getmtime)


IN_USE_FILE = '.in-use'


def prune(root, keep):
    """Delete all but the newest `keep` versions; never `current`, never one marked in use."""
    _, current = current_version(root)
    candidates = [v for v in versions(root) if os.path.realpath(v) != current]
    removable = candidates[:max(0, len(candidates) - max(0, keep - 1))]
    removed = []
    for path in removable:
        if _in_use(path):
            log.info('keeping %s: in use (%s)', path, IN_USE_FILE)
            continue
        shutil.rmtree(path)
        removed.append(path)
        log.info('removed %s', path)
    return removed


def _in_use(path):
    """A stage or job marks a version it reads with .in-use files holding its pid and time."""
    marker = os.path.join(path, IN_USE_FILE)
    return os.path.exists(marker) and time.time() - os.path.getmtime(marker) < 7 * 86400
