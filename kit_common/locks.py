"""One exclusive lock per tree that commands change: flock on ROOT/.lock.

The kernel drops a flock when its holder dies, so a killed command never leaves a stale lock. The
holder writes who it is into the file, so a second command can say what it waits for.
"""
import contextlib
import fcntl
import logging
import os
import socket
import time

from kit_common import files

log = logging.getLogger(__name__)
LOCK_FILE = '.lock'


class Busy(Exception):
    """The lock is held and the caller chose not to wait; str() names the holder."""


@contextlib.contextmanager
def exclusive(root, what, wait=True):
    """Hold ROOT/.lock for the block. A second holder waits (saying for whom) or, with
    wait=False, gets Busy at once."""
    path = os.path.join(root, LOCK_FILE)
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise Busy('%s holds %s' % (holder, path))
            log.info('waiting for %s: %s holds it', path, holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        _record(fd, what)
        yield
    finally:
        os.close(fd)


def _open(path):
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    except PermissionError:
        # Another account created it without group write: flock needs only an open file (on
        # local file systems; NFS wants write access and then fails below with a clear error).
        try:
            return os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise files.io_error(path, exc, 'make %s writable for the accounts that run this command' % path)
    except OSError as exc:
        raise files.io_error(path, exc, 'check that %s exists and is writable' % os.path.dirname(path))


def _holder(fd):
    text = os.pread(fd, 512, 0).decode('utf-8', 'replace').strip()
    return text or 'another process'


def _record(fd, what):
    text = '%s (pid %d on %s, since %s)\n' % (what, os.getpid(), socket.gethostname(),
                                              time.strftime('%Y-%m-%d %H:%M:%S'))
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode('utf-8'), 0)
    except OSError:
        pass    # opened read-only: the lock holds all the same, only the holder's name is missing
