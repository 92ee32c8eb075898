"""Builds of one installed variant: PREFIX/<version>/<variant>/{images,envs}/<date-time>/.

Every `make install` builds into a new directory, so jobs keep running from the build they
started with while the next one is made and switched in. A failed build removes its own
directory. After a switch the current and the previous build are kept (jobs started before the
switch, on any node, may still run from the previous one); an older build is removed only when
no process on this host uses it. Processes on other nodes cannot be seen from here, which is why
the previous build is always kept.
"""
import datetime
import logging
import os
import shutil

logger = logging.getLogger(__name__)

FOLDERS = ('images', 'envs')   # METHOD=apptainer builds, METHOD=conda or venv builds


def new(vardir, folder):
    """The path of a new build (not created), named by the time: it sorts by age and is unique
    to the microsecond, so two installs in one second do not collide."""
    return os.path.join(vardir, folder, datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f'))


def make(build, func):
    """Run func(), which builds into build; a failure (or Ctrl-C) removes the half-built directory."""
    try:
        func()
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise


def containing(vardir, path):
    """The build directory that holds path (an image or environment), or None."""
    parts = os.path.relpath(path, vardir).split(os.sep)
    return os.path.join(vardir, parts[0], parts[1]) if len(parts) >= 2 and parts[0] in FOLDERS else None


def existing(vardir):
    return sorted(os.path.join(vardir, folder, name) for folder in FOLDERS
                  if os.path.isdir(os.path.join(vardir, folder))
                  for name in os.listdir(os.path.join(vardir, folder)))


def prune(vardir, current, previous):
    """Remove the builds older than previous that no process on this host uses; say what stays."""
    if previous and previous != current and os.path.isdir(previous):
        logger.info('kept the previous build %s: jobs started before this install may still run from it', previous)
    for build in existing(vardir):
        if build in (current, previous):
            continue
        users = users_of(build)
        if users:
            logger.info('kept the older build %s: in use by %s', build, ', '.join(users))
        else:
            shutil.rmtree(build, ignore_errors=True)
            logger.info('removed the older build %s (no process on this host uses it)', build)


def users_of(path):
    """What on this host runs from path: processes whose executable, working or root directory,
    open or mapped files or command-line arguments lie under it, and loop devices (Apptainer image
    mounts) backed by a file under it. Without root, other users' processes show only their
    command line."""
    roots = {os.path.abspath(path), os.path.realpath(path)}

    def inside(p):
        return any(p == r or p.startswith(r + '/') for r in roots)
    found = ['pid %s (%s)' % (pid, _comm(pid)) for pid in _pids() if any(inside(p) for p in _paths_of(pid))]
    return found + ['loop device %s' % dev for dev, backing in _loop_devices() if inside(backing)]


def _pids():
    return [name for name in os.listdir('/proc') if name.isdigit() and int(name) != os.getpid()]


def _paths_of(pid):
    base = '/proc/%s/' % pid
    links = [base + name for name in ('exe', 'cwd', 'root')]
    try:
        links += [base + 'fd/' + fd for fd in os.listdir(base + 'fd')]
    except OSError:   # another user's process, or gone
        pass
    for link in links:
        try:
            yield os.readlink(link)
        except OSError:
            pass
    for line in _read(base + 'maps').splitlines():
        fields = line.split(None, 5)
        if len(fields) == 6:   # the mapped file's path, when the mapping has one
            yield fields[5]
    for arg in _read(base + 'cmdline').split('\0'):
        yield arg


def _read(path):
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            return f.read()
    except OSError:
        return ''


def _comm(pid):
    return _read('/proc/%s/comm' % pid).strip() or '?'


def _loop_devices():
    for dev in os.listdir('/sys/block') if os.path.isdir('/sys/block') else ():
        try:
            with open('/sys/block/%s/loop/backing_file' % dev) as f:
                yield dev, f.read().strip()
        except OSError:
            pass
