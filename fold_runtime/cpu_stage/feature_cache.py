"""The site's shared feature cache: CPU-stage results addressed by what they were made from.

An entry is keyed by the meta's input keys (sequence hash, db preset, template date, database
manifest or fingerprint), so any target with the same sequence and inputs reuses it and costs no
CPU stage, whoever ran it first. Layout: CACHE/<2 hex>/<key>/{entry.json, features.npz, msas/}.

Members of a group share the cache, not their trust (docs/DESIGN.md §7), so an entry is data only:
- no pickles: numeric features in features.npz, read with allow_pickle=False; the byte-string
  features (AlphaFold's object arrays: sequence, domain and template names, species ids) in
  entry.json, rebuilt with AlphaFold's dtypes; the order of the keys is kept too;
- entry.json records the SHA-256 of every other file, checked on every read;
- immutable once published: read-only files in directories only their owner can write, inside
  cache and shard directories that are setgid and sticky, so no member can rename, replace or
  change another member's entry. The reader checks exactly this before it reads anything;
- any problem with an entry is logged and counts as a miss (the CPU stage runs), and the next
  store by someone allowed to move it replaces it (a good entry is never replaced); a cache that
  cannot be written is logged too. The cache never fails a run.
A member can still add an entry for inputs that nobody has run yet: the group is trusted that far.
The target's own features.pkl stays a pickle: only its owner reads it.
"""
import io
import json
import logging
import os
import re
import shutil
import stat
import tempfile

import numpy as np

from fold_runtime import meta, target_layout
from kit_common import digests, files
from kit_common.errors import KitError

log = logging.getLogger(__name__)
FORMAT = 1
ENTRY_FILE = 'entry.json'
ARRAYS_FILE = 'features.npz'
MSA_DIR = target_layout.MSAS   # an entry's MSAs, named as in a target directory
SHARDS = ['%02x' % i for i in range(256)]
MSA_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9._-]*')
# Cache and shard directories: group rwx, setgid (entries keep the group), sticky (only an entry's
# owner may rename or delete it). "Other" keeps what the umask gives.
SHARED_DIR = stat.S_ISGID | stat.S_ISVTX | stat.S_IRWXG


class Unusable(Exception):
    """Why an entry cannot be read, or a result cannot be stored."""


def key(wanted):
    # Only the keys the meta holds: an optional input key that a run did not use leaves the key
    # as it was before that key existed, so earlier entries stay reachable.
    return digests.json_digest({k: wanted[k] for k in meta.INPUT_KEYS if k in wanted})


def entry_dir(cache, wanted):
    k = key(wanted)
    return os.path.join(cache, k[:2], k)


def fetch(cache, wanted, target, tdir):
    """Fill tdir from a matching entry; True on a hit."""
    feats = fetch_msas(cache, wanted, target, os.path.join(tdir, MSA_DIR))
    if feats is None:
        return False
    files.write_json(os.path.join(tdir, meta.META_FILE), dict(wanted, features_source='cache'))
    files.write_pickle(os.path.join(tdir, target_layout.FEATURES), feats)
    return True


def fetch_msas(cache, wanted, target, msa_dir):
    """Replace msa_dir with a matching entry's MSA files and return its features; None on a miss.
    The features keep this target's own description (domain_name), so they equal what its own CPU
    stage would have made."""
    entry = entry_dir(cache, wanted)
    if not os.path.isdir(entry):
        return None
    staging = None
    try:
        _check_immutable(cache, entry)
        feats, msa_files = _read(entry, wanted)
        staging = files.temp_dir(os.path.dirname(msa_dir), os.path.basename(msa_dir) + '-')
        for name, data in msa_files.items():
            files.write_bytes(os.path.join(staging, name), data)
    except Exception as exc:     # whatever is wrong with an entry, the CPU stage can still run
        log.warning('%s: feature cache entry %s not used (%s: %s); running the CPU stage',
                    target.name, entry, type(exc).__name__, exc)
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
        return None
    feats['domain_name'] = np.array([target.description.encode('utf-8')], dtype=np.object_)
    files.publish_dir(staging, msa_dir, replace=True)
    return feats


def _read(entry, wanted):
    """The features and the verified MSA files {name: bytes} of an entry; Unusable (or any other
    error) when something in it is wrong."""
    record = _record(entry, wanted)
    feats = _features(entry, record, wanted)
    return feats, {rel.split('/', 1)[1]: _verified(entry, rel, record)
                   for rel in record['files'] if rel != ARRAYS_FILE}


def _check_immutable(cache, entry):
    """Unusable unless nobody but the entry's owner (or the cache's owner, or root) could have
    changed the entry since it was published."""
    shard = os.path.dirname(entry)
    owner, cache_owner = os.lstat(entry).st_uid, os.stat(cache).st_uid
    for directory, info in ((cache, os.stat(cache)), (shard, os.lstat(shard))):
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            raise Unusable('%s is writable by others and not sticky: anyone could replace entries' % directory)
    if os.lstat(shard).st_uid not in (owner, cache_owner, 0):
        raise Unusable('%s belongs to uid %d, who could replace entries in it; let the cache\'s owner '
                       'create the cache (its first run creates every shard directory)' % (shard, os.lstat(shard).st_uid))
    _check_read_only(entry)


def _check_read_only(entry):
    for directory, dirs, names in os.walk(entry):
        for path in [directory] + [os.path.join(directory, n) for n in dirs + names]:
            mode = os.lstat(path).st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)) or mode & 0o022:
                raise Unusable('%s is not a read-only file or directory of its owner' % path)


def _record(entry, wanted):
    path = os.path.join(entry, ENTRY_FILE)
    if not os.path.exists(path):
        raise Unusable('no %s: an older kit\'s entry, or not an entry' % ENTRY_FILE)
    with open(path) as f:
        record = json.load(f)
    if record.get('format') != FORMAT:
        raise Unusable('format %r, not %d' % (record.get('format'), FORMAT))
    diffs = meta.differences(record['meta'], wanted)
    if diffs:
        raise Unusable('made from other inputs: %s' % '; '.join(diffs))
    for rel in record['files']:
        if rel != ARRAYS_FILE and not (rel.startswith(MSA_DIR + '/') and MSA_NAME.fullmatch(rel[len(MSA_DIR) + 1:])):
            raise Unusable('it lists the file %r' % rel)
    return record


def _verified(entry, rel, record):
    """The bytes of one entry file, when they hash to what entry.json recorded (read once, so
    what was checked is what is used)."""
    with open(os.path.join(entry, rel), 'rb') as f:
        data = f.read()
    if digests.bytes_digest(data) != record['files'][rel]:
        raise Unusable('%s does not match its SHA-256 in %s' % (rel, ENTRY_FILE))
    return data


def _features(entry, record, wanted):
    """The features dict, in its recorded key order, dtypes and shapes."""
    with np.load(io.BytesIO(_verified(entry, ARRAYS_FILE, record)), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    feats = {}
    for item in record['features']:
        name = item['name']
        value = _bytes_array(record['text'][name], item['shape']) if name in record['text'] else arrays[name]
        if str(value.dtype) != item['dtype'] or list(value.shape) != item['shape']:
            raise Unusable('feature %s is %s %s, recorded as %s %s' % (name, value.dtype, value.shape,
                                                                      item['dtype'], item['shape']))
        feats[name] = value
    if meta.sequence_sha256(feats['sequence'][0].decode('utf-8')) != wanted['sequence_sha256']:
        raise Unusable('its sequence feature is another sequence')
    return feats


def _bytes_array(texts, shape):
    """AlphaFold's string features: numpy object arrays of bytes. JSON holds them as latin-1
    text, which maps every byte to one character and back."""
    flat = np.empty(len(texts), dtype=np.object_)
    for i, text in enumerate(texts):
        flat[i] = text.encode('latin-1')
    return flat.reshape(shape)


def store(cache, wanted, feats, msa_dir):
    """Add a CPU-stage result (its features and the files of its msa_dir) to the cache, unless a
    usable entry is already there; a broken one is replaced. True when this call published it. A
    cache that cannot take it is logged: the run's own outputs are complete."""
    final = entry_dir(cache, wanted)
    broken = os.path.lexists(final) and _broken(cache, final, wanted)
    if os.path.lexists(final) and not broken:
        return False
    tmp = None
    try:
        shard = _prepare(cache, os.path.basename(os.path.dirname(final)))
        tmp = tempfile.mkdtemp(prefix=files.TMP_PREFIX, dir=shard)
        _write_entry(tmp, wanted, feats, msa_dir)
        aside = _set_aside_if_broken(final, wanted, broken) if broken else None
        published = files.publish_dir(tmp, final)    # atomic; another writer that got there first wins
        if aside:
            # After the new entry is in place; a member's files may resist the cache's owner.
            shutil.rmtree(aside, ignore_errors=True)
        return published
    except (OSError, ValueError, Unusable, KitError) as exc:
        log.warning('not added to the feature cache %s: %s', cache, exc)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        return False


def _broken(cache, entry, wanted):
    """Why the entry cannot be read (what a fetch would log), or None when it is usable."""
    try:
        _check_immutable(cache, entry)
        _read(entry, wanted)
    except Exception as exc:     # as in fetch_msas: every problem makes the entry a miss
        return '%s: %s' % (type(exc).__name__, exc)
    return None


def _set_aside_if_broken(entry, wanted, why):
    """Move a broken entry out of the way, so that a new one can take its place; returns the
    directory that now holds it, to be deleted. The sticky shard lets only the entry's owner (or
    the cache's owner, or root) move it. It is judged again once moved: a concurrent writer may
    have replaced it with a good entry since it was judged, and a good entry stays."""
    aside = tempfile.mkdtemp(prefix=files.TMP_PREFIX + 'old-', dir=os.path.dirname(entry))
    moved = os.path.join(aside, 'entry')
    os.rename(entry, moved)
    try:
        _check_read_only(moved)
        _read(moved, wanted)
    except Exception:     # still broken
        log.warning('replacing the broken feature cache entry %s (%s)', entry, why)
        return aside
    os.rename(moved, entry)
    os.rmdir(aside)
    raise Unusable('%s was replaced by a usable entry meanwhile' % entry)


def _prepare(cache, shard):
    """The shard directory. The cache's owner creates every shard, so that shards belong to the
    cache's owner: a shard's owner could replace entries in it (readers check who that is)."""
    _shared_dir(cache)
    for name in SHARDS if os.stat(cache).st_uid == os.geteuid() else [shard]:
        _shared_dir(os.path.join(cache, name))
    return os.path.join(cache, shard)


def _shared_dir(path):
    os.makedirs(path, exist_ok=True)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & SHARED_DIR != SHARED_DIR:
        try:
            os.chmod(path, mode | SHARED_DIR)
        except PermissionError:
            pass                   # another member's directory; readers judge what it allows


def _write_entry(tmp, wanted, feats, msas):
    arrays, text, layout = {}, {}, []
    for name, value in feats.items():
        value = np.asarray(value)
        if value.dtype == np.object_:
            if not all(isinstance(x, bytes) for x in value.flat):
                raise Unusable('feature %s holds objects other than bytes' % name)
            text[name] = [x.decode('latin-1') for x in value.flat]
        else:
            arrays[name] = value
        layout.append({'name': name, 'dtype': str(value.dtype), 'shape': list(value.shape)})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    hashes = {ARRAYS_FILE: _write_read_only(os.path.join(tmp, ARRAYS_FILE), buf.getvalue())}
    os.mkdir(os.path.join(tmp, MSA_DIR))
    for name in sorted(os.listdir(msas)):
        if MSA_NAME.fullmatch(name) and os.path.isfile(os.path.join(msas, name)):
            with open(os.path.join(msas, name), 'rb') as f:
                hashes[MSA_DIR + '/' + name] = _write_read_only(os.path.join(tmp, MSA_DIR, name), f.read())
    record = {'format': FORMAT, 'meta': wanted, 'features': layout, 'text': text, 'files': hashes}
    _write_read_only(os.path.join(tmp, ENTRY_FILE), json.dumps(record, indent=1).encode('utf-8'))
    for directory in (os.path.join(tmp, MSA_DIR), tmp):
        os.chmod(directory, _mode(0o750, 0o005))


def _write_read_only(path, data):
    """Write a new entry file, readable by owner and group ("other" as the umask says); its hash."""
    with open(path, 'xb') as f:
        f.write(data)
    os.chmod(path, _mode(0o440, 0o004))
    return digests.bytes_digest(data)


def _mode(base, other):
    return base | (other & ~files.umask())
