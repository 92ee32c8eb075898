"""Downloading and unpacking one database source.

Downloads resume (HTTP Range, or aria2c --continue), use parallel connections with aria2c,
retry with exponential backoff, and show a progress bar. A 404 is not retried: it means a wrong
URL or mirror. mmCIF files come with rsync, which is incremental by nature.
"""
import errno
import gzip
import os
import shutil
import subprocess
import tarfile
import time

from kit_common import files, tools
from kit_common.errors import EXIT_MISSING, EXIT_TOOL, KitError

RETRY_STATUS = (429, 500, 502, 503, 504)


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
        raise files.io_error(dest, exc, 'free space on the data root; the published version is untouched')
    os.replace(part, dest)
    return dest


def _aria2c(url, part, retries, backoff, connections, quiet):
    cmd = ['aria2c', '--continue=true', '--allow-overwrite=true', '--auto-file-renaming=false',
           '--max-tries=%d' % retries, '--retry-wait=%d' % max(1, int(backoff)),
           '--max-connection-per-server=%d' % connections, '--split=%d' % connections, '--min-split-size=1M',
           '--file-allocation=none', '--console-log-level=error', '--summary-interval=0',
           '--dir', os.path.dirname(part), '--out', os.path.basename(part), url]
    if quiet:
        cmd.insert(1, '--quiet=true')
    res = subprocess.run(cmd, stdout=None if not quiet else subprocess.DEVNULL, stderr=subprocess.PIPE,
                         universal_newlines=True)
    if res.returncode == 9:
        raise OSError(errno.ENOSPC, 'disk full')
    if res.returncode != 0:
        missing = res.returncode == 3 or '404' in res.stderr   # aria2c's 3: resource not found
        raise KitError('download of %s failed (aria2c exit %d%s): %s' % (
                           url, res.returncode, ', 404 Not Found' if missing else '', res.stderr.strip()[-300:]),
                       'check the URL or --mirror (the mirror must keep upstream paths)' if missing else
                       'rerun: the download resumes where it stopped', EXIT_MISSING if missing else EXIT_TOOL)


def _requests(url, part, retries, backoff, quiet):
    import requests
    from tqdm import tqdm
    for attempt in range(retries + 1):
        have = os.path.getsize(part) if os.path.exists(part) else 0
        try:
            with requests.get(url, stream=True, timeout=60,
                              headers={'Range': 'bytes=%d-' % have} if have else {}) as r:
                if r.status_code == 404:
                    raise KitError('%s answered 404 Not Found' % url,
                                   'check the URL or --mirror (the mirror must keep upstream paths)', EXIT_MISSING)
                if r.status_code == 416:      # nothing left to fetch
                    return
                if r.status_code in RETRY_STATUS:
                    raise requests.HTTPError('HTTP %d' % r.status_code)
                r.raise_for_status()
                if have and r.status_code == 200:
                    have = 0                  # the server ignored Range: start over
                length = int(r.headers.get('Content-Length', 0))
                with open(part, 'ab' if have else 'wb') as f, tqdm(
                        total=have + length or None, initial=have, unit='B', unit_scale=True,
                        desc=os.path.basename(url), disable=quiet, leave=False) as bar:
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


def rsync_tree(url, dest):
    os.makedirs(dest, exist_ok=True)
    tools.run(['rsync', '-rlpt', '--delete', '--timeout=600', url.rstrip('/') + '/', dest + '/'],
              'rsync from %s' % url, 'check --rsync-mirror and the network; rerun to resume',
              install_hint='install the "rsync" package')


def unpack(source, archive_path, tree, append=False):
    """Unpack one downloaded source into the version tree at source.target."""
    target = os.path.join(tree, source.target)
    if source.archive in ('tar', 'tar.gz'):
        os.makedirs(target, exist_ok=True)
        with tarfile.open(archive_path) as tar:
            for member in tar.getmembers():
                if member.name.startswith('/') or '..' in member.name.split('/'):
                    raise KitError('unsafe path %r in %s' % (member.name, archive_path), 'check the mirror', EXIT_TOOL)
            tar.extractall(target)
    elif source.archive == 'gz':
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with gzip.open(archive_path, 'rb') as src, open(target, 'ab' if append else 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
    elif source.archive == 'file':
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(archive_path, target)
    elif source.archive == 'rsync':
        # AlphaFold's layout: every <id>.cif.gz of the divided tree, unzipped into one flat folder.
        os.makedirs(target, exist_ok=True)
        for directory, _, names in os.walk(archive_path):
            for name in names:
                if name.endswith('.cif.gz'):
                    with gzip.open(os.path.join(directory, name), 'rb') as src, \
                            open(os.path.join(target, name[:-3]), 'wb') as dst:
                        shutil.copyfileobj(src, dst)
