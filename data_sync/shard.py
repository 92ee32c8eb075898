"""alphafold-data shard: the FASTA databases jackhmmer reads, split into shards for sharded searches.

Shards are contiguous, not round-robin: shard 1, 2, ... concatenated are the database byte for
byte, so sequences gathered shard by shard keep the database's order (the CPU stage's second
pass reads them in that order). Cuts fall at record boundaries nearest equal byte counts, so the
shards hold about equal residues, which is what jackhmmer's time grows with.

Sharding publishes a new version: the current one hard-linked, plus the shards, with the
manifest's `shards` record: per database its FASTA, its sequence count (jackhmmer's -Z) and each
shard's path and sequence count, in order. The shard files are in the manifest's file list like
every file, so verify, stage and prune treat them as they treat the databases.
"""
import hashlib
import logging
import os
import shutil

from data_sync import manifest, store
from kit_common import files
from kit_common.errors import EXIT_INPUT, EXIT_MISMATCH, EXIT_MISSING, KitError

log = logging.getLogger(__name__)
SHARDABLE = ('uniref90', 'mgnify', 'small_bfd', 'uniprot', 'pdb_seqres')


def shard_paths(fasta_rel, n):
    return ['%s.shard-%d-of-%d' % (fasta_rel, i + 1, n) for i in range(n)]


def check_databases(databases):
    """databases, when each is one of the FASTA databases jackhmmer (or hmmsearch) reads."""
    other = [db.name for db in databases if db.name not in SHARDABLE]
    if other:
        raise KitError('%s cannot be sharded' % ', '.join(other),
                       'choose among %s: the FASTA databases jackhmmer and hmmsearch read' % ', '.join(SHARDABLE),
                       EXIT_INPUT)
    return databases


def publish_sharded(root, databases, n):
    """Publish the current version with each database in n shards (n == 1: unsharded)."""
    if n < 1:
        raise KitError('--shards %d: a database is split into 1 shard (unsharded) or more' % n,
                       'pass --shards 2 or more, or 1 to remove the shards', EXIT_INPUT)
    _, current = store.current_version(root)
    old = manifest.load(current) if current else None
    if old is None:
        raise KitError('no published version with a manifest under %s' % root,
                       'publish the databases first (alphafold-data sync or publish)', EXIT_MISSING)
    absent = [db.name for db in databases if _fasta(db) not in old['files']]
    if absent:
        raise KitError('%s: not in the current version %s' % (', '.join(absent), current),
                       'download it first (alphafold-data sync --databases %s), or leave it out of --databases'
                       % ','.join(absent), EXIT_MISSING)
    wanted = [db for db in databases if _count(old, db.name) != n]
    for db in databases:
        if db not in wanted:
            log.info('%s: already in %d shard%s', db.name, n, '' if n == 1 else 's')
    if not wanted:
        return current
    staging = files.temp_dir(root, 'shard-')
    try:
        return _publish(root, current, old, wanted, n, os.path.join(staging, 'tree'))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def kept_records(old, entries):
    """The shards records of the old manifest whose FASTA and shards a new version's file list
    (entries) holds unchanged: a sync that keeps a sharded database keeps it sharded; one that
    fetched the database again drops its record (its shards were of the old file)."""
    if not old:
        return {}
    return {name: record for name, record in old.get('shards', {}).items()
            if all(rel in entries and entries[rel] == old['files'].get(rel)
                   for rel in [record['fasta']] + [path for path, _ in record['shards']])}


def _count(recorded, name):
    return len(recorded.get('shards', {}).get(name, {}).get('shards', [None]))


def _publish(root, current, old, databases, n, tree):
    files.link_tree(current, tree)
    known = dict(old['files'])
    record = dict(old.get('shards', {}))
    for db in databases:
        for rel, _ in record.pop(db.name, {}).get('shards', []):
            files.remove(os.path.join(tree, rel))
            known.pop(rel)
        if n > 1:
            record[db.name] = _split(tree, _fasta(db), known, n)
    built = manifest.build(tree, old.get('archives'), known=known)
    built['shards'] = record
    manifest.write(tree, built)
    final = store.publish(root, tree, built['id'])
    log.info('published version %s at %s', built['id'], final)
    return final


def _fasta(db):
    (rel,) = db.paths.values()   # a shardable database is one FASTA file
    return rel


def _split(tree, rel, known, n):
    """Write rel's n shards into tree, checking rel against its manifest entry on the way (a
    corrupt database must not become certified shards); their entries go into known, so the
    manifest does not read them again. Returns the manifest's record of the database."""
    out = shard_paths(rel, n)
    # A shard file that a sync kept unrecorded is a hard link into older versions: replaced, never written through.
    for path in out:
        files.remove(os.path.join(tree, path))
    counts, digests, source = write_shards(os.path.join(tree, rel), [os.path.join(tree, p) for p in out])
    if source != known[rel]['sha256']:
        raise KitError('%s does not match its manifest entry (checksum differs)' % rel,
                       'alphafold-data sync --verify full --databases %s fetches it again; then shard'
                       % rel.split('/', 1)[0], EXIT_MISMATCH)
    if not all(counts):
        raise KitError('%s has %d sequences, too few for %d shards' % (rel, sum(counts), n),
                       'choose fewer --shards', EXIT_INPUT)
    for path, digest in zip(out, digests):
        known[path] = {'size': os.path.getsize(os.path.join(tree, path)), 'sha256': digest}
    log.info('%s: %d sequences in %d shards (%s)', rel, sum(counts), n, ', '.join(str(c) for c in counts))
    return {'fasta': rel, 'sequences': sum(counts), 'shards': [[p, c] for p, c in zip(out, counts)]}


def write_shards(path, out_paths):
    """Copy path's records into out_paths in order, each next shard begun at the first record
    past its share of the bytes. Returns the sequence count and SHA-256 of each shard and the
    SHA-256 of path."""
    n, size = len(out_paths), os.path.getsize(path)
    counts, digests, source = [0] * n, [hashlib.sha256() for _ in out_paths], hashlib.sha256()
    outs = []
    try:
        outs.extend(open(p, 'wb') for p in out_paths)
        i, written = 0, 0
        with open(path, 'rb') as f:
            for line in f:
                if line.startswith(b'>'):
                    if i < n - 1 and counts[i] and written >= size * (i + 1) // n:
                        i += 1
                    counts[i] += 1
                outs[i].write(line)
                digests[i].update(line)
                source.update(line)
                written += len(line)
    except OSError as exc:
        raise files.io_error(path, exc, 'free space or fix permissions, then shard again; current was not changed')
    finally:
        for f in outs:
            f.close()
    return counts, [d.hexdigest() for d in digests], source.hexdigest()
