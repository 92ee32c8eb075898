"""Atomic file output: write to a temporary file in the same directory, fsync, then rename.

A reader never sees a half-written file, and a killed run leaves only '.tmp-*' debris that the
next run ignores and overwrites.
"""
import errno
import json
import os
import pickle
import tempfile

from fold_runtime.errors import EXIT_IO, KitError


def _io_error(path, exc):
    if exc.errno == errno.ENOSPC:
        return KitError('no space left on the device while writing %s' % path,
                        'free space on that file system or choose another --output-dir', EXIT_IO)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return KitError('cannot write %s: %s' % (path, exc.strerror),
                        'choose an --output-dir you can write to', EXIT_IO)
    return KitError('cannot write %s: %s' % (path, exc), 'check the output file system', EXIT_IO)


def write_bytes(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix='.tmp-' + os.path.basename(path) + '-', dir=directory)
    except OSError as exc:
        raise _io_error(path, exc)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise _io_error(path, exc)
    except BaseException:
        _remove(tmp)
        raise


def write_text(path, text):
    write_bytes(path, text.encode('utf-8'))


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


def write_pickle(path, obj):
    write_bytes(path, pickle.dumps(obj, protocol=4))


def make_dirs(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise _io_error(path, exc)
    if not os.access(path, os.W_OK | os.X_OK):
        raise KitError('output directory %s is not writable' % path,
                       'choose an --output-dir you can write to', EXIT_IO)


def remove_debris(*directories):
    """Delete the temporary files a killed run left behind."""
    for directory in directories:
        for name in os.listdir(directory):
            if name.startswith('.tmp-'):
                _remove(os.path.join(directory, name))


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
