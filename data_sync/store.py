"""Versioned copies: ROOT/versions/<id> (shared) or LOCAL/<id> (node-local), and a `current`
symlink switched atomically.

A reader that resolved `current` keeps reading its version while a new one is switched in. Ids
and link targets read from disk are checked (layout.check_id) before they become paths: others
may write the shared tree.
"""
import contextlib
import logging
import os
import shutil
import socket
import time

from data_sync import layout
from kit_common import files
from kit_common.errors import KitError

log = logging.getLogger(__name__)
VERSIONS = 'versions'
IN_USE_PREFIX = '.in-use'
IN_USE_DAYS = 7


def current_version(root):
    """(version id, directory) that ROOT/current points to, or (None, None). The link must name a
    version the kit made (versions/<id>, or <id> on a node-local root) and its manifest.id must be
    an id."""
    link = os.path.join(root, 'current')
    if not os.path.islink(link):
        return None, None
    text = os.readlink(link)
    name = text[len(VERSIONS) + 1:] if text.startswith(VERSIONS + '/') else text
    layout.check_id(name, 'the link %s' % link)
    target = os.path.realpath(os.path.join(root, text))
    id_file = os.path.join(target, layout.MANIFEST_ID_FILE)
    return layout.check_id(layout.read_id(id_file) or name, id_file), target


def switch_current(root, target_dir):
    """Point ROOT/current at target_dir in one rename: readers see the old or the new, never neither."""
    tmp = os.path.join(root, '.current-%d' % os.getpid())
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.relpath(target_dir, root), tmp)
    os.replace(tmp, os.path.join(root, 'current'))


def publish(root, tree, ident):
    """Rename a verified tree to ROOT/versions/<id> and make it current. A failed rename keeps the
    tree where it was (a download of hours is not thrown away)."""
    versions_dir = os.path.join(root, VERSIONS)
    files.make_dirs(versions_dir)
    final, stamp = os.path.join(versions_dir, ident), time.time()
    while os.path.lexists(final):       # the same content again (a repaired copy): a new directory
        final = '%s.%s' % (os.path.join(versions_dir, ident), time.strftime('%Y%m%d%H%M%S', time.localtime(stamp)))
        stamp += 1                      # repaired twice within a second: the next free second
    try:
        os.rename(tree, final)
    except OSError as exc:
        raise files.io_error(final, exc, 'the unpacked tree is still at %s; fix the cause and run '
                                         'alphafold-data publish' % tree)
    switch_current(root, final)
    return final


def versions(root, local=False):
    """Version directories, oldest first: ROOT/versions/<id>, or LOCAL/<id> for a node-local root.
    Only real directories named like a version: anything else there (lost+found, a link, an
    admin's files) is never a candidate for deletion."""
    d = root if local else os.path.join(root, VERSIONS)
    if not os.path.isdir(d):
        return []
    paths = [os.path.join(d, n) for n in os.listdir(d) if layout.VERSION_ID.fullmatch(n)]
    return sorted((p for p in paths if os.path.isdir(p) and not os.path.islink(p)), key=os.path.getmtime)


def prune(root, keep, local=False):
    """Delete all but the newest `keep` versions; never `current`, never one marked in use."""
    _, current = current_version(root)
    candidates = [v for v in versions(root, local) if os.path.realpath(v) != current]
    removable = candidates[:max(0, len(candidates) - max(0, keep - 1))]
    removed = []
    for path in removable:
        marker = _in_use(path)
        if marker:
            log.info('keeping %s: in use (%s)', path, marker)
            continue
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise files.io_error(path, exc, 'remove it by hand, or fix its permissions and rerun')
        removed.append(path)
        log.info('removed %s', path)
    return removed


def _in_use(path):
    """The newest marker younger than IN_USE_DAYS (a killed reader's marker expires), or None."""
    for name in os.listdir(path):
        marker = os.path.join(path, name)
        if name.startswith(IN_USE_PREFIX) and time.time() - os.path.getmtime(marker) < IN_USE_DAYS * 86400:
            return name
    return None


@contextlib.contextmanager
def in_use(version_dir):
    """Mark version_dir as read by this process while the block runs, so prune keeps it: one
    marker per host and process (.in-use.<host>.<pid>), so concurrent readers never share one. A
    copy this process cannot write (read-only mount, another owner) stays unmarked: it is logged,
    and the reading goes on."""
    marker = os.path.join(version_dir, '%s.%s.%d' % (IN_USE_PREFIX, socket.gethostname(), os.getpid()))
    try:
        files.write_text(marker, '%s\n' % time.strftime('%Y-%m-%d %H:%M:%S'))
    except KitError as exc:
        log.info('not marking %s as in use (%s); prune there could remove it meanwhile', version_dir, exc.problem)
        marker = None
    try:
        yield
    finally:
        if marker:
            files.remove(marker)
