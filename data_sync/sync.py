"""download -> verify -> publish, the cron entry point.

Databases still intact in the current version are hard-linked into the new tree, not fetched
again; the rest are downloaded (resumably, into ROOT/downloads) and unpacked into ROOT/.incoming.
Only a complete set is published, and `current` moves only then: a failed sync never changes
what jobs read.
"""
import fcntl
import logging
import os
import shutil
import subprocess

from data_sync import fetch, manifest, registry, store
from kit_common import digests, files
from kit_common.errors import EXIT_MISMATCH, EXIT_TOOL, KitError

log = logging.getLogger(__name__)


class Locked(Exception):
    """Another sync holds the data root's lock."""


def lock(root):
    os.makedirs(root, exist_ok=True)
    handle = open(os.path.join(root, '.sync.lock'), 'w')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise Locked()
    return handle


def top_dirs(db):
    return sorted({rel.split('/', 1)[0] for rel in db.required})


def download(root, databases, mirror=None, rsync_mirror=None, downloader='auto', verify='size',
             quiet=False):
    """Fill ROOT/.incoming with a complete tree for `databases`; returns the archives' records and
    the names of the databases fetched (not kept from the current version)."""
    _, current = store.current_version(root)
    old = manifest.load(current) if current else None
    incoming = os.path.join(root, '.incoming')
    shutil.rmtree(incoming, ignore_errors=True)      # debris of a killed run; downloads/ keeps partials
    os.makedirs(incoming)
    archives, fetched = {}, []
    for db in databases:
        if old and _intact(current, old, db, verify):
            for d in top_dirs(db):
                subprocess.run(['cp', '-al', os.path.join(current, d), os.path.join(incoming, d)], check=True)
            archives.update({s.url: old['archives'][s.url] for s in db.sources if s.url in old.get('archives', {})})
            log.info('%-12s unchanged, kept from version %s', db.name, os.path.basename(current))
            continue
        fetched.append(db.name)
        for i, src in enumerate(db.sources):
            try:
                archives[src.url] = _fetch_source(root, db, src, incoming,
                                                  i > 0 and db.sources[i - 1].target == src.target,
                                                  mirror, rsync_mirror, downloader, quiet)
            except OSError as exc:
                raise files.io_error(incoming, exc, 'free space (alphafold-data plan shows the need); '
                                                    'current was not changed')
    incomplete = [rel for db in databases for rel in db.required if not os.path.exists(os.path.join(incoming, rel))]
    if incomplete:
        raise KitError('the downloaded set is incomplete: %s' % ', '.join(incomplete[:5]),
                       'check the sources (alphafold-data plan --show-urls); current was not changed', EXIT_MISMATCH)
    return archives, fetched


def _intact(current, old, db, verify):
    present = all(os.path.exists(os.path.join(current, rel)) for rel in db.required)
    return present and not manifest.verify(current, old, checksum=None if verify == 'full' else (),
                                           databases=set(top_dirs(db)))


def _fetch_source(root, db, src, incoming, append, mirror, rsync_mirror, downloader, quiet):
    cache = os.path.join(root, 'downloads', db.name)
    if src.archive == 'rsync':
        url = registry.mirrored(src.url, rsync_mirror)
        log.info('%-12s rsync %s', db.name, url)
        raw = os.path.join(cache, 'rsync')
        fetch.rsync_tree(url, raw)
        fetch.unpack(src, raw, incoming)
        return {'size': None, 'sha256': None, 'url': url}
    url = registry.mirrored(src.url, mirror)
    path = os.path.join(cache, os.path.basename(src.url))
    for attempt in (1, 2):
        log.info('%-12s download %s', db.name, url)
        fetch.download(url, path, downloader=downloader, quiet=quiet)
        if not src.md5_listing or _md5_ok(path, registry.mirrored(src.md5_listing, mirror), cache, downloader):
            break
        os.unlink(path)
        if attempt == 2:
            raise KitError('%s does not match the md5 that upstream publishes, twice' % url,
                           'try another --mirror or later; current was not changed', EXIT_MISMATCH)
        log.info('%-12s md5 mismatch, fetching again', db.name)
    record = {'size': os.path.getsize(path), 'sha256': digests.file_digest(path), 'url': url}
    fetch.unpack(src, path, incoming, append=append)
    os.unlink(path)            # the manifest keeps its checksum; the space goes to the next database
    return record


def _md5_ok(path, listing_url, cache, downloader):
    listing = fetch.download(listing_url, os.path.join(cache, 'md5sum.listing'), downloader=downloader, quiet=True)
    with open(listing) as f:
        sums = dict(reversed(line.split()[:2]) for line in f if len(line.split()) >= 2)
    os.unlink(listing)
    name = os.path.basename(path)
    if name not in sums:
        raise KitError('%s lists no md5 for %s' % (listing_url, name), 'check the mirror', EXIT_TOOL)
    return digests.file_digest(path, 'md5') == sums[name]


def publish(root, archives=None, fetched=()):
    """Publish ROOT/.incoming. A tree identical to the current version is not republished, unless
    databases were fetched again (a repair of a corrupted current version)."""
    incoming = os.path.join(root, '.incoming')
    built = manifest.build(incoming, archives)
    ident, current = store.current_version(root)
    if ident == built['id'] and not fetched:
        shutil.rmtree(incoming)
        log.info('up to date: version %s', ident)
        return current
    manifest.write(incoming, built)
    final = store.publish(root, incoming, built['id'])
    log.info('published version %s at %s', built['id'], final)
    return final
