"""download -> verify -> publish, the cron entry point.

Databases still intact in the current version whose https files upstream still announces as the
ones recorded (HEAD: size, ETag, Last-Modified), and every database not asked for, are hard-linked
into the new tree with the entries the current manifest recorded for them (never hashed again, so
a file that rotted in place is still reported by verify, not certified); the rest are downloaded
(resumably, into ROOT/downloads) and unpacked into ROOT/.incoming. The mmCIF tree is rsync'd on
every run, and only its changed files are unzipped again. Only a complete set is published, and
only when it differs from the current version (or repairs it); `current` moves only then: a failed
sync never changes what jobs read. The caller holds the data root's lock (kit_common.locks).
"""
import collections
import errno
import json
import logging
import os
import shutil

from data_sync import fetch, manifest, prepare, registry, shard, space, store
from kit_common import digests, files
from kit_common.errors import EXIT_MISMATCH, EXIT_TOOL, KitError

log = logging.getLogger(__name__)
INCOMING = '.incoming'
# What download() leaves beside the tree for publish(): archives' checksums, the databases fetched,
# and the kept files' recorded manifest entries.
RECORD_FILE = '.archives.json'


def top_dirs(db):
    return sorted({rel.split('/', 1)[0] for rel in db.required})


def with_siblings(names, databases):
    """names plus the databases that share a folder with one of them (ColabFold's two share colabfold/):
    such databases are fetched, prepared and kept together, never one into the other's old files."""
    folders = {d for db in databases if db.name in names for d in top_dirs(db)}
    return set(names) | {db.name for db in databases if folders & set(top_dirs(db))}


def download(root, databases, mirror=None, rsync_mirror=None, downloader='auto', verify='size',
             quiet=False, gpu=False):
    """Fill ROOT/.incoming with a complete tree. A database's https files are fetched when it is not
    intact in the current version, or when upstream announces (HEAD) another file than the one its
    manifest recorded, or when it was prepared otherwise than gpu asks (prepare.prepared_as: ColabFold's
    padded for MMseqs2-GPU or not); its rsync tree is refreshed on every run (rsync decides what
    changed). Every database not asked for is kept as it is. It must fit first (_check_space); a
    failure removes .incoming again (downloads/ keeps resumable partials)."""
    _, current = store.current_version(root)
    old = manifest.load(current) if current else None
    announced = {src.url: fetch.upstream(registry.mirrored(src.url, mirror))
                 for db in databases for src in db.sources if src.archive != 'rsync'}
    damaged = with_siblings({db.name for db in databases if not (old and _intact(current, old, db, verify))},
                            databases)
    refetch = with_siblings(damaged | {db.name for db in databases if db.name not in damaged
                                       and (_changed(db, old, announced) or _prepared_otherwise(db, current, gpu))},
                            databases)
    _check_space(root, [db for db in databases if db.name in refetch], announced)
    incoming = os.path.join(root, INCOMING)
    shutil.rmtree(incoming, ignore_errors=True)      # debris of a killed run
    files.make_dirs(incoming)
    try:
        _fill(root, current, old, databases, Plan(damaged, refetch, announced), incoming, verify,
              (mirror, rsync_mirror, downloader, quiet), gpu)
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)  # a failed sync leaves its file system as it found it
        raise


# What download() does with each database: damaged ones are fetched whole, nothing reused; the https
# files of refetch ones are fetched again; `announced` is what upstream said of each https file.
Plan = collections.namedtuple('Plan', 'damaged refetch announced')


def _fill(root, current, old, databases, plan, incoming, verify, how, gpu):
    archives, kept = dict(old.get('archives') or {}) if old else {}, {}
    if old:                                          # checked first: a damaged one stops before any download
        kept.update(_keep_others(current, old, databases, verify, incoming))
    kept_dirs = set()
    for db in databases:
        if db.name not in plan.refetch and db.transport != 'rsync':
            kept.update(_keep(current, old, [d for d in top_dirs(db) if d not in kept_dirs], incoming))
            kept_dirs.update(top_dirs(db))   # a folder shared by databases is linked once
            log.info('%-12s unchanged, kept from version %s', db.name, os.path.basename(current))
            continue
        for i, src in enumerate(db.sources):
            try:
                record, reused = _source(root, db, i, current, old, plan, incoming, how)
            except OSError as exc:
                raise files.io_error(incoming, exc, 'free space (alphafold-data plan shows the need); '
                                                    'current was not changed')
            if record:
                archives[src.url] = record
            kept.update(reused)
        if db.name in plan.refetch:
            prepare.run(db, incoming, gpu)
    incomplete = [rel for db in databases for rel in db.required if not os.path.exists(os.path.join(incoming, rel))]
    if incomplete:
        raise KitError('the downloaded set is incomplete: %s' % ', '.join(incomplete[:5]),
                       'check the sources (alphafold-data plan --show-urls); current was not changed', EXIT_MISMATCH)
    files.write_json(os.path.join(incoming, RECORD_FILE),
                     {'archives': archives, 'fetched': sorted(plan.refetch), 'kept': kept})


def _source(root, db, i, current, old, plan, incoming, how):
    """Source i of db into incoming: (its new archive record or None, the entries it kept from the
    current version)."""
    src, (mirror, rsync_mirror, downloader, quiet) = db.sources[i], how
    if src.archive == 'rsync':
        previous = os.path.join(current, src.target) if db.name not in plan.damaged else None
        return _rsync_source(root, db, src, incoming, rsync_mirror, previous, old)
    if db.name not in plan.refetch:                  # unchanged upstream, beside a refreshed tree
        return None, _keep(current, old, [src.target], incoming)
    append = i > 0 and db.sources[i - 1].target == src.target
    return _fetch_source(root, db, src, incoming, append, mirror, downloader, quiet,
                         plan.announced.get(src.url) or {}), {}


def _changed(db, old, announced):
    """Whether upstream announces, for an https file of db, another file than the one the current
    version was made from. What was not recorded (a tree published with --from) or not announced
    cannot be compared: kept, and said."""
    for src in db.sources:
        if src.archive == 'rsync':
            continue
        then, now = (old.get('archives') or {}).get(src.url), announced[src.url]
        if not then or not now:
            log.warning('%-12s %s: %s, so it is kept unchecked', db.name, src.url,
                        'upstream did not answer HEAD' if then else 'no record of the file it came from')
            continue
        differences = _differences(then, now)
        if differences:
            log.info('%-12s changed upstream: %s', db.name, '; '.join(differences))
            return True
    return False


def _prepared_otherwise(db, current, gpu):
    if prepare.prepared_as(db, current, gpu):
        return False
    log.info('%-12s is %spadded for MMseqs2-GPU, and --gpu-dbs asks otherwise: fetched and prepared again',
             db.name, 'not ' if gpu else '')
    return True


def _differences(then, now):
    """What upstream now announces (HEAD) unlike the record of the file the current version was made
    from: its size, and its ETag and Last-Modified where recorded from the same URL (another
    mirror's validators say nothing of it)."""
    pairs = [('size', then.get('size'), now['length'])]
    if then.get('url') == now['url']:
        pairs += [(key, then.get(key), now[key]) for key in ('etag', 'last_modified')]
    return ['%s %s, recorded %s' % (key, new, was) for key, was, new in pairs
            if was is not None and new is not None and was != new]


def _check_space(root, dbs, announced):
    """Refuse, before anything is written, a sync whose downloads and what they unpack to (the
    registry's expansion of the sizes upstream announces, or its own sizes where it announces
    none) do not fit on the data root. The mmCIF tree comes by rsync, incrementally: not counted."""
    need = 0
    for db in dbs:
        for src in db.sources:
            if src.archive != 'rsync':
                size = announced[src.url].get('length') or db.download_bytes
                need += size * (1 + db.expansion)
    space.check({root: need})


def _intact(current, old, db, verify):
    """Every required path of db is recorded in the old manifest and its files pass the check that
    --verify asks for (sizes, or SHA-256 with full)."""
    recorded = all(rel in old['files'] or any(f.startswith(rel + '/') for f in old['files']) for rel in db.required)
    return recorded and not manifest.verify(current, old, checksum=None if verify == 'full' else (),
                                            databases=set(top_dirs(db)))


def _keep_others(current, old, databases, verify, incoming):
    """The current version's databases that this sync was not asked for, kept; one that fails
    the check stops the sync (fetching it was not asked for, publishing it unchecked is wrong)."""
    asked = {d for db in databases for d in top_dirs(db)}
    others = sorted({rel.split('/', 1)[0] for rel in old['files']} - asked)
    if not others:
        return {}
    problems = manifest.verify(current, old, checksum=None if verify == 'full' else (), databases=set(others))
    if problems:
        raise KitError('the current version does not match its manifest in databases this sync keeps:\n    %s'
                       % '\n    '.join(problems[:10]),
                       'add them to --databases (or sync without --databases) to fetch them again; '
                       'current was not changed', EXIT_MISMATCH)
    log.info('%-12s kept from version %s (not in --databases)', ', '.join(others), os.path.basename(current))
    return _keep(current, old, others, incoming)


def _keep(current, old, paths, incoming):
    """Hard-link exactly the old manifest's files at or under `paths` into incoming; returns their
    recorded entries."""
    entries = {rel: e for rel, e in old['files'].items() if any(rel == p or rel.startswith(p + '/') for p in paths)}
    try:
        for rel in entries:
            dst = os.path.join(incoming, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.link(os.path.join(current, rel), dst, follow_symlinks=False)
    except OSError as exc:
        raise files.io_error(incoming, exc, 'check the data root (hard links within it must work); '
                                            'current was not changed')
    return entries


def _rsync_source(root, db, src, incoming, rsync_mirror, previous, old):
    """rsync the tree into downloads/ (only what changed upstream travels) and unpack it; files
    unchanged since the current version (previous) are hard-linked with their recorded entries."""
    url = registry.mirrored(src.url, rsync_mirror)
    log.info('%-12s rsync %s', db.name, url)
    raw = os.path.join(root, 'downloads', db.name, 'rsync')
    fetch.rsync_tree(url, raw)
    linked = fetch.unpack_tree(raw, os.path.join(incoming, src.target), db.max_expansion, previous)
    rels = (src.target + '/' + name for name in linked)
    kept = {rel: old['files'][rel] for rel in rels if rel in old['files']}
    log.info('%-12s %d files unchanged since the current version, the rest unzipped', db.name, len(kept))
    return {'size': None, 'sha256': None, 'url': url}, kept


def _fetch_source(root, db, src, incoming, append, mirror, downloader, quiet, announced):
    """Download one https source and unpack it; its record keeps what upstream announced of it
    (ETag, Last-Modified), for the next sync to compare."""
    cache = os.path.join(root, 'downloads', db.name)
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
    record = {'size': os.path.getsize(path), 'sha256': digests.file_digest(path), 'url': url,
              'etag': announced.get('etag'), 'last_modified': announced.get('last_modified')}
    fetch.unpack(src, path, incoming, append=append, max_ratio=db.max_expansion)
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


def publish(root, tree, default_fetched=()):
    """Publish tree (ROOT/.incoming, or an admin's tree copied in) with the record download()
    left in it. A tree identical to the current version is not republished, unless databases
    were fetched again (a repair of a corrupted current version)."""
    record = _record(tree, default_fetched)
    built = manifest.build(tree, record['archives'], known=record['kept'])
    ident, current = store.current_version(root)
    built['shards'] = shard.kept_records(manifest.load(current) if current else None, built['files'])
    if ident == built['id'] and not record['fetched']:
        shutil.rmtree(tree)
        log.info('up to date: version %s', ident)
        return current
    manifest.write(tree, built)
    final = store.publish(root, tree, built['id'])
    log.info('published version %s at %s', built['id'], final)
    return final


def _record(tree, default_fetched):
    path = os.path.join(tree, RECORD_FILE)
    if not os.path.exists(path):
        return {'archives': {}, 'fetched': list(default_fetched), 'kept': {}}
    try:
        with open(path) as f:
            record = json.load(f)
        manifest.check_entries(record['kept'], path)
        return record
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise KitError('cannot read %s: %s' % (path, exc), 'run alphafold-data download (or sync) again', EXIT_MISMATCH)


def publish_from(root, source, move=False):
    """Publish an unpacked tree from elsewhere. It is copied into the data root (hard links where
    the file system allows) and the source is left alone; with move, the source is renamed in
    (copied, then removed after success, when it lies on another file system)."""
    manifest.check_plain(source)           # before anything of it enters the data root
    staging = files.temp_dir(root, 'publish-')
    tree = os.path.join(staging, 'tree')
    moved = move and _rename(source, tree)
    try:
        if not moved:
            files.link_tree(source, tree)
        final = publish(root, tree, default_fetched=['(from %s)' % source])
    except BaseException:
        if moved and os.path.isdir(tree):
            os.rename(tree, source)           # put the admin's directory back
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    if move and not moved:
        shutil.rmtree(source)
    return final


def _rename(source, dest):
    """True when source was renamed to dest; False when they lie on different file systems."""
    try:
        os.rename(source, dest)
        return True
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return False
        raise files.io_error(dest, exc, 'check both directories; nothing was changed')
