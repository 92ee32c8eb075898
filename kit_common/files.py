"""Atomic outputs: a file is written to a temporary name in its directory, fsynced and renamed;
a directory is built under a temporary name and renamed into place. A reader never sees a
half-written result, and a killed run leaves only '.tmp-*' debris that the next run removes.

io_error() is the one place where an OSError becomes a KitError (a full disk is exit 5).
"""
import errno
import json
import os
import pickle
import shutil
import tempfile

from kit_common.errors import EXIT_IO, KitError

TMP_PREFIX = '.tmp-'


def disk_full(exc):
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def io_error(path, exc, fix=None):
    """The KitError (exit 5) for an OSError met while writing path."""
    if disk_full(exc):
        return KitError('no space left on the device while writing %s' % path,
                        fix or 'free space on that file system, or choose another directory (e.g. --output-dir)', EXIT_IO)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return KitError('cannot write %s: %s' % (path, exc.strerror), fix or 'choose a directory you can write to (e.g. another --output-dir)',
                        EXIT_IO)
    return KitError('cannot write %s: %s' % (path, exc), fix or 'check the file system', EXIT_IO)


def umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path, data, mode=0o644):
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + os.path.basename(path) + '-', dir=directory)
    except OSError as exc:
        raise io_error(path, exc)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode & ~umask())
        os.replace(tmp, path)
    except OSError as exc:
        remove(tmp)
        raise io_error(path, exc)
    except BaseException:
        remove(tmp)
        raise


def write_text(path, text, mode=0o644):
    write_bytes(path, text.encode('utf-8'), mode)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


def write_pickle(path, obj):
    """Only for files this user reads back (features.pkl, result_*.pkl), never across users."""
    write_bytes(path, pickle.dumps(obj, protocol=4))


def make_dirs(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise io_error(path, exc)
    if not os.access(path, os.W_OK | os.X_OK):
        raise KitError('directory %s is not writable' % path, 'choose a directory you can write to (e.g. another --output-dir)',
                       EXIT_IO)


def temp_dir(parent, name=''):
    """A fresh directory beside its final place, for publish_dir()."""
    make_dirs(parent)
    try:
        return tempfile.mkdtemp(prefix=TMP_PREFIX + name, dir=parent)
    except OSError as exc:
        raise io_error(parent, exc)


def publish_dir(tmp, final, replace=False):
    """Rename the finished directory tmp to final. Without replace, an existing final wins (a
    concurrent writer got there first) and tmp is removed: returns False. With replace, the old
    final is swapped out and deleted only after the new one is in place."""
    old = None
    if replace and os.path.lexists(final):
        old = tempfile.mkdtemp(prefix=TMP_PREFIX + 'old-', dir=os.path.dirname(final))
        os.rename(final, os.path.join(old, 'd'))
    try:
        os.rename(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old:
            os.rename(os.path.join(old, 'd'), final)
            os.rmdir(old)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and not replace:
            return False
        raise io_error(final, exc)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    return True


def link_tree(src, dst):
    """Copy the tree src to dst (which must not exist), hard-linking each file where the file
    system allows it (same device, a file this user may link) and copying it otherwise. Links
    stay links. On failure dst is removed and src is untouched."""
    try:
        for directory, dirs, names in os.walk(src, onerror=_raise):
            out = os.path.normpath(os.path.join(dst, os.path.relpath(directory, src)))
            os.makedirs(out)
            for name in names + [d for d in dirs if os.path.islink(os.path.join(directory, d))]:
                _link_or_copy(os.path.join(directory, name), os.path.join(out, name))
    except OSError as exc:
        shutil.rmtree(dst, ignore_errors=True)
        raise io_error(dst, exc)


def _link_or_copy(src, dst):
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:               # another device, protected_hardlinks, too many links: copy
        shutil.copy2(src, dst, follow_symlinks=False)


def _raise(exc):
    raise exc


def remove_debris(*directories):
    """Delete the temporary files a killed run left behind."""
    for directory in directories:
        for name in os.listdir(directory):
            if name.startswith(TMP_PREFIX):
                path = os.path.join(directory, name)
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else remove(path)


def remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_tree(path):
    """Remove path, whatever it is: a symlink is removed itself, never what it points to (rmtree
    refuses a symlink, and with ignore_errors it did so silently, leaving the link in use)."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
    except OSError as exc:
        raise io_error(path, exc)
