"""Downloading and unpacking one database source.

Downloads resume (HTTP Range with If-Range, or aria2c --continue), use parallel connections
with aria2c, retry with exponential backoff, and show a progress bar. A 404 is not retried: it
means a wrong URL or mirror. mmCIF files come with rsync, which is incremental by nature.
"""
import contextlib
import errno
import gzip
import os
import shutil
import stat
import subprocess
import tarfile
import time
import zlib

from kit_common import files, tools
from kit_common.errors import EXIT_MISSING, EXIT_TOOL, KitError

RETRY_STATUS = (429, 500, 502, 503, 504)
NOT_UPSTREAM = 'the archive is not what upstream publishes: check --mirror / --rsync-mirror; current was not changed'
VALIDATOR = '.validator'     # beside a .part: the ETag or Last-Modified of the version it holds


def download(url, dest, downloader='auto', retries=6, backoff=1.0, connections=4, quiet=False):
    """Fetch url into dest (resuming dest + '.part'); returns dest."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    part = dest + '.part'
    use_aria2 = downloader == 'aria2c' or (downloader == 'auto' and shutil.which('aria2c'))
    try:
        if use_aria2:
            _aria2c(url, part, retries, backoff, connections, quiet)
        else:
            _requests(url, part, retries, backoff, quiet)
    except OSError as exc:
        if files.disk_full(exc):              # a part that filled the disk would keep it full, and cannot resume
            _discard(part)
        raise files.io_error(dest, exc, 'free space on the data root; the published version is untouched')
    os.replace(part, dest)
    files.remove(part + VALIDATOR)
    return dest


def _discard(part):
    """Remove a partial download and what records it (its validator, aria2c's control file)."""
    for path in (part, part + VALIDATOR, part + '.aria2'):
        files.remove(path)


# aria2c's exit statuses worth another run: unknown error (a refused connection), timeout, too
# slow, network problem, unfinished download, name resolution, bad response header, server busy.
ARIA2C_TRANSIENT = (1, 2, 5, 6, 7, 19, 22, 29)
ARIA2C_RUNS = 3


def _aria2c(url, part, retries, backoff, connections, quiet):
    """aria2c retries within a run (--max-tries); a run that still ends in a transient failure is
    repeated, with backoff. Its errors go to a log file, so the message can quote them whether or
    not its console output is shown."""
    log_file = part + '.aria2c.log'
    cmd = ['aria2c', '--continue=true', '--allow-overwrite=true', '--auto-file-renaming=false',
           '--max-tries=%d' % retries, '--retry-wait=%d' % max(1, int(backoff)),
           '--max-connection-per-server=%d' % connections, '--split=%d' % connections, '--min-split-size=1M',
           '--file-allocation=none', '--console-log-level=error', '--summary-interval=0',
           '--log=%s' % log_file, '--log-level=error',
           '--dir', os.path.dirname(part), '--out', os.path.basename(part), url]
    if quiet:
        cmd.insert(1, '--quiet=true')
    for run in range(ARIA2C_RUNS):
        files.remove(log_file)
        res = subprocess.run(cmd, stdout=subprocess.DEVNULL if quiet else None)
        said = _aria2c_errors(log_file)
        files.remove(log_file)
        if res.returncode == 0:
            return
        if res.returncode == 9 or tools.disk_full(said):
            raise OSError(errno.ENOSPC, 'disk full')
        if res.returncode not in ARIA2C_TRANSIENT or run == ARIA2C_RUNS - 1:
            break
        time.sleep(backoff * 2 ** run)
    missing = res.returncode == 3 or '404' in said   # aria2c's 3: resource not found
    raise KitError('download of %s failed (aria2c exit %d%s): %s' % (
                       url, res.returncode, ', 404 Not Found' if missing else '', said or '(aria2c said nothing)'),
                   'check the URL or --mirror (the mirror must keep upstream paths)' if missing else
                   'rerun: the download resumes where it stopped', EXIT_MISSING if missing else EXIT_TOOL)


def _aria2c_errors(log_file):
    """The innermost reason in aria2c's error log (its last errorCode line), e.g.
    'errorCode=3 Resource not found'."""
    try:
        with open(log_file, errors='replace') as f:
            reasons = [line for line in f if 'errorCode=' in line]
    except OSError:
        return ''
    return 'errorCode=' + reasons[-1].split('errorCode=', 1)[1].strip() if reasons else ''


def _requests(url, part, retries, backoff, quiet):
    import requests
    from tqdm import tqdm
    for attempt in range(retries + 1):
        have, validator = _resumable(part)
        try:
            with requests.get(url, stream=True, timeout=60,
                              headers={'Range': 'bytes=%d-' % have, 'If-Range': validator} if have else {}) as r:
                if r.status_code == 404:
                    raise KitError('%s answered 404 Not Found' % url,
                                   'check the URL or --mirror (the mirror must keep upstream paths)', EXIT_MISSING)
                if r.status_code == 416:      # nothing left to fetch
                    return
                if r.status_code in RETRY_STATUS:
                    raise requests.HTTPError('HTTP %d' % r.status_code)
                r.raise_for_status()
                if r.status_code != 206:
                    have = 0                  # no Range asked, Range ignored, or upstream changed: start over
                length = int(r.headers.get('Content-Length', 0))
                with open(part, 'ab' if have else 'wb') as f, tqdm(
                        total=have + length or None, initial=have, unit='B', unit_scale=True,
                        desc=os.path.basename(url), disable=quiet, leave=False) as bar:
                    if not have:              # after the truncation: a record never outlives its bytes
                        _remember(part, r.headers)
                    for block in r.iter_content(1 << 14):   # small blocks: a dropped connection loses little
                        f.write(block)
                        bar.update(len(block))
                if not length or os.path.getsize(part) == have + length:
                    return
        except (requests.ConnectionError, requests.Timeout, requests.HTTPError,
                requests.exceptions.ChunkedEncodingError) as exc:
            if attempt == retries:
                raise KitError('download of %s failed after %d attempts: %s' % (url, retries + 1, exc),
                               'rerun later: the download resumes where it stopped', EXIT_TOOL)
            time.sleep(backoff * 2 ** attempt)
        except requests.RequestException as exc:
            # A bad URL or redirect (file://, ftp://), too many redirects: no retry helps. Named
            # here, as requests' errors are OSErrors, which download() would blame on the disk.
            raise KitError('download of %s failed: %s' % (url, exc),
                           'check the URL or --mirror (only http:// and https:// addresses are fetched)', EXIT_TOOL)


def _resumable(part):
    """(bytes of part to keep, If-Range validator): a .part is resumed only when the validator of
    the version it holds is recorded, so that a changed upstream sends the whole new file instead
    of a tail spliced onto the old head."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    try:
        with open(part + VALIDATOR) as f:
            validator = f.read().strip()
    except OSError:
        validator = ''
    return (have, validator) if validator else (0, '')


def _remember(part, headers):
    """Record the validator of the version part now holds: a strong ETag (If-Range takes no weak
    one), else Last-Modified; none, and the part is never resumed."""
    etag = headers.get('ETag', '')
    validator = etag if etag and not etag.startswith('W/') else headers.get('Last-Modified', '')
    if validator:
        files.write_text(part + VALIDATOR, validator + '\n')
    else:
        files.remove(part + VALIDATOR)


def upstream(url):
    """What upstream announces for url (a HEAD request): {'url', 'length', 'etag', 'last_modified'},
    None for what it does not announce; {} when it does not answer 200."""
    import requests
    try:
        r = requests.head(url, allow_redirects=True, timeout=60)
    except requests.RequestException:
        return {}
    if r.status_code != 200:
        return {}
    length = r.headers.get('Content-Length', '')
    return {'url': url, 'length': int(length) if length.isdigit() else None,
            'etag': r.headers.get('ETag'), 'last_modified': r.headers.get('Last-Modified')}


def rsync_tree(url, dest):
    """Mirror the mmCIF tree. Regular files only (no -l, -D or -p): a link or device on the mirror
    is skipped, never recreated, and no setuid bit arrives."""
    os.makedirs(dest, exist_ok=True)
    tools.run(['rsync', '-rt', '--delete', '--timeout=600', url.rstrip('/') + '/', dest + '/'],
              'rsync from %s' % url, 'check --rsync-mirror and the network; rerun to resume',
              install_hint='install the "rsync" package')


def unpack(source, archive_path, tree, append=False, max_ratio=None):
    """Unpack one downloaded source into the version tree at source.target. With max_ratio, no
    archive may unpack to more than max_ratio times its own size: a decompression bomb stops,
    named, long before it fills the data root."""
    target = os.path.join(tree, source.target)
    if source.archive in ('tar', 'tar.gz'):
        with _unreadable_archive(archive_path):
            extract_tar(archive_path, target, Budget(archive_path, max_ratio))
    elif source.archive == 'gz':
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with _unreadable_archive(archive_path), gzip.open(archive_path, 'rb') as src, \
                open(target, 'ab' if append else 'wb') as dst:
            Budget(archive_path, max_ratio).copy(src, dst)
    elif source.archive == 'file':
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(archive_path, target)


def unpack_tree(raw, target, max_ratio=None, previous=None):
    """AlphaFold's mmCIF layout: every <id>.cif.gz of the rsync'd divided tree `raw`, unzipped into
    the flat folder target with the .gz file's modification time. A file of the same name and time
    in `previous` (the current version's folder) is that upstream file unzipped before (rsync
    gives a changed file upstream's new time): it is hard-linked instead. Returns the names linked."""
    os.makedirs(target, exist_ok=True)
    linked = []
    for path, info in _cif_files(raw):
        name = os.path.basename(path)[:-3]
        if previous and _same_time(os.path.join(previous, name), info):
            os.link(os.path.join(previous, name), os.path.join(target, name))
            linked.append(name)
            continue
        with gzip.open(path, 'rb') as src, open(os.path.join(target, name), 'wb') as dst:
            Budget(path, max_ratio).copy(src, dst)
        os.utime(os.path.join(target, name), ns=(info.st_atime_ns, info.st_mtime_ns))
    return linked


def _cif_files(raw):
    """(path, lstat) of every .cif.gz under raw; anything but a regular file stops the unpack, named."""
    for directory, _, names in os.walk(raw):
        for name in names:
            if name.endswith('.cif.gz'):
                path = os.path.join(directory, name)
                info = os.lstat(path)
                if not stat.S_ISREG(info.st_mode):
                    raise _refused(raw, os.path.relpath(path, raw), 'not a regular file')
                yield path, info


def _same_time(path, info):
    try:
        found = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(found.st_mode) and found.st_mtime_ns == info.st_mtime_ns


class Budget(object):
    """What an archive may still unpack to: max_ratio times its size (unlimited without one)."""

    def __init__(self, archive, max_ratio):
        self.archive, self.max_ratio = archive, max_ratio
        self.left = os.path.getsize(archive) * max_ratio if max_ratio else float('inf')

    def spend(self, size):
        self.left -= size
        if self.left < 0:
            raise KitError('%s unpacks to more than %g times its size, far beyond what the registry expects of '
                           'this database: a decompression bomb, or not the file upstream publishes'
                           % (self.archive, self.max_ratio), NOT_UPSTREAM, EXIT_TOOL)

    def copy(self, src, dst):
        for block in iter(lambda: src.read(1 << 22), b''):
            self.spend(len(block))
            dst.write(block)


def extract_tar(archive_path, target, budget=None):
    """Extract regular files and directories, each inside target; any other member (a link, a
    device, a FIFO, a setuid file, a path leaving target) stops the unpack with its name. One
    pass over the stream: BFD's archive is 272 GB. Python's 'data' filter does the extraction
    where it exists (3.8.17+, 3.11.4+), a plain file copy otherwise. Members' sizes are spent
    from budget, when given, before they are written."""
    os.makedirs(target, exist_ok=True)
    root = os.path.realpath(target)
    with tarfile.open(archive_path, 'r|*') as tar:
        for member in tar:
            problem = member_problem(member, root)
            if problem:
                raise _refused(archive_path, member.name, problem)
            if budget:
                budget.spend(member.size)
            if DATA_FILTER:
                tar.extract(member, root, filter='data')
            else:
                _extract_plain(tar, member, root)


DATA_FILTER = hasattr(tarfile, 'data_filter')


def member_problem(member, root):
    """Why member may not be extracted under root (a real path), or None."""
    if not (member.isreg() or member.isdir()):
        return 'a %s, not a regular file or directory' % (
            'symbolic link' if member.issym() else 'hard link' if member.islnk() else
            'FIFO' if member.isfifo() else 'device' if member.isdev() else 'special member')
    if member.name.startswith('/') or '..' in member.name.split('/'):
        return 'an absolute path or one with ..'
    if member.isreg() and member.mode & 0o6000:      # directories: the data filter ignores their mode
        return 'setuid or setgid'
    path = os.path.realpath(os.path.join(root, member.name))
    if os.path.commonpath([path, root]) != root:
        return 'a path outside the tree'
    return None


def _extract_plain(tar, member, root):
    """What the data filter does for the members member_problem lets through: directories, and
    regular files written with default permissions, owned by whoever unpacks."""
    path = os.path.join(root, member.name)
    if member.isdir():
        os.makedirs(path, exist_ok=True)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o755 if member.mode & 0o100 else 0o644)
    with os.fdopen(fd, 'wb') as dst:
        shutil.copyfileobj(tar.extractfile(member), dst, 1 << 22)
    os.utime(path, (member.mtime, member.mtime))


@contextlib.contextmanager
def _unreadable_archive(path):
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise KitError('%s is not a readable archive: %s' % (path, exc),
                       'rerun: the file is fetched again (check --mirror if it persists); current was not changed',
                       EXIT_TOOL)


def _refused(archive, member, problem):
    return KitError('%s: member %r is %s; only regular files and directories inside the tree are unpacked'
                    % (archive, member, problem),
                    NOT_UPSTREAM, EXIT_TOOL)
