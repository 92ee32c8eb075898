"""Free space: whether a file system can hold what a command is about to write (plan, sync)."""
import logging
import os
import shutil

from kit_common.errors import EXIT_INPUT, EXIT_IO, KitError

log = logging.getLogger(__name__)


def check(needs):
    """Refuse when a file system cannot hold what is planned for it (roots on one device add up).
    Nothing is created: a root that does not exist yet is measured at its nearest existing parent."""
    by_device = {}
    for root, need in needs.items():
        where = existing_dir(root)
        by_device.setdefault(os.stat(where).st_dev, []).append((root, need, where))
    for entries in by_device.values():
        roots = ' and '.join(r for r, _, _ in entries)
        need = sum(n for _, n, _ in entries)
        free = shutil.disk_usage(entries[0][2]).free
        log.info('needed %.1f GB, free %.1f GB on %s', need / 1e9, free / 1e9, roots)
        if need > free:
            raise KitError('not enough space on %s: %.1f GB needed, %.1f GB free' % (roots, need / 1e9, free / 1e9),
                           'free space, choose another --data-root/--local-root, or limit --databases / '
                           'use --preset reduced_dbs', EXIT_IO)


def existing_dir(path):
    """The nearest existing directory at or above path; a root that can never be created (a
    file on its way) is an input error."""
    path = os.path.abspath(path)
    while not os.path.isdir(path):
        if os.path.lexists(path):
            raise KitError('%s is not a directory, so nothing can be created under it' % path,
                           'choose another --data-root / --local-root', EXIT_INPUT)
        path = os.path.dirname(path)
    return path
