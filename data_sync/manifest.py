"""Manifests: the size and SHA-256 of every file of a database version, and the version's id.

manifest.json lists files (relative path -> size, sha256) and, where known, the archives they
came from and (data_sync.shard) the databases split into shards; manifest.id is a short hash of
the file list, so equal trees get equal ids.
"""
import json
import os
import re
import stat

from data_sync.layout import MANIFEST_ID_FILE, STAMP_FILE, check_id
from kit_common.digests import file_digest, json_digest
from kit_common.errors import EXIT_MISMATCH, KitError
from kit_common.files import write_json, write_text

MANIFEST_FILE = 'manifest.json'
OWN_FILES = (MANIFEST_FILE, MANIFEST_ID_FILE, STAMP_FILE)
SHA256 = re.compile(r'[0-9a-f]{64}')


def walk(tree):
    """Relative paths of the data files under tree (the manifest's own files excluded)."""
    for directory, dirs, files in os.walk(tree):
        dirs.sort()
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(directory, name), tree)
            if rel not in OWN_FILES and not name.startswith('.'):   # .tmp-*, .in-use: not data
                yield rel


def build(tree, archives=None, known=None):
    """The manifest of tree. Files in `known` (path -> the entry a previous manifest recorded) keep
    that entry and are not hashed again: a kept file that rotted in place must keep its recorded
    checksum, so that verify still reports it, instead of being certified as it now is."""
    known = known or {}
    files = {}
    for rel in walk(tree):
        path = os.path.join(tree, rel)
        info = os.lstat(path)
        _refuse(path, info.st_mode)
        if rel in known and known[rel]['size'] != info.st_size:
            raise KitError('%s changed since it was kept from the current version (size %d, recorded %d)'
                           % (path, info.st_size, known[rel]['size']),
                           'run alphafold-data sync again: it fetches what no longer matches', EXIT_MISMATCH)
        files[rel] = known.get(rel) or {'size': info.st_size, 'sha256': file_digest(path)}
    ident = json_digest(files)[:16]
    return {'id': ident, 'files': files, 'archives': archives or {}}


def check_plain(tree):
    """Refuse a tree to publish that holds anything but directories and plain regular files, under
    any name: walk() skips dot-names, but a copy of the tree would keep them."""
    for directory, dirs, names in os.walk(tree):
        for name in names + dirs:
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISDIR(mode):
                _refuse(path, mode)


def _refuse(path, mode):
    """A KitError unless mode (lstat's) is a regular file's without setuid or setgid bits."""
    problem = 'not a regular file' if not stat.S_ISREG(mode) else 'setuid or setgid' if mode & 0o6000 else None
    if problem:
        raise KitError('%s is %s' % (path, problem), 'a published version holds regular files only, without '
                       'setuid or setgid bits: put a plain copy of the file in place of the link, special file or '
                       'setuid file (chmod ug-s), then publish again', EXIT_MISMATCH)


def write(tree, manifest):
    write_json(os.path.join(tree, MANIFEST_FILE), manifest)
    write_text(os.path.join(tree, MANIFEST_ID_FILE), manifest['id'] + '\n')


def load(tree):
    """tree's manifest, or None; checked, because its id and paths become paths."""
    path = os.path.join(tree, MANIFEST_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as exc:
        raise KitError('cannot read %s: %s' % (path, exc), 'republish the version (alphafold-data sync)', EXIT_MISMATCH)
    return checked(manifest, path)


def checked(manifest, where):
    """manifest, when it has the shape the kit writes; else a KitError naming what is wrong."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get('files'), dict):
        raise KitError('%s is not a manifest (no file list)' % where, 'republish the version (alphafold-data sync)',
                       EXIT_MISMATCH)
    check_id(manifest.get('id'), where)
    check_entries(manifest['files'], where)
    sharded = manifest.get('shards', {})
    if not isinstance(sharded, dict):
        raise KitError('%s: its shards record is not a table' % where, 'shard again (alphafold-data shard), or '
                       'republish the version', EXIT_MISMATCH)
    for name, record in sharded.items():
        check_shards(record, manifest['files'], '%s (the shards of %s)' % (where, name))
    return manifest


def check_shards(record, entries, where):
    """A shards record as data_sync.shard writes it: a listed FASTA, its sequence count, and its
    shards, each listed, whose counts add up to it. Its paths become search inputs."""
    shards = record.get('shards') if isinstance(record, dict) else None
    if not (isinstance(shards, list) and len(shards) > 1 and _listed(record.get('fasta'), entries)
            and type(record.get('sequences')) is int
            and all(isinstance(s, list) and len(s) == 2 and _listed(s[0], entries) and type(s[1]) is int and s[1] > 0
                    for s in shards)
            and sum(s[1] for s in shards) == record['sequences']):
        raise KitError('%s: the record is not a FASTA file, its sequence count and its shards' % where,
                       'shard again (alphafold-data shard), or republish the version', EXIT_MISMATCH)


def _listed(rel, entries):
    return isinstance(rel, str) and rel in entries


def check_entries(entries, where):
    for rel, entry in entries.items():
        if not safe_relative(rel):
            raise KitError('%s lists the path %r, which leaves the tree' % (where, rel),
                           'the manifest was changed by hand or tampered with: republish the version', EXIT_MISMATCH)
        if not (isinstance(entry, dict) and type(entry.get('size')) is int and entry['size'] >= 0
                and isinstance(entry.get('sha256'), str) and SHA256.fullmatch(entry['sha256'])):
            raise KitError('%s: the entry of %s is not a size and a SHA-256' % (where, rel),
                           'republish the version (alphafold-data sync)', EXIT_MISMATCH)


def safe_relative(rel):
    """A path that stays inside its tree: relative, no '.' or '..' parts, nothing rsync's
    --files-from or a shell line could misread."""
    parts = rel.split('/') if isinstance(rel, str) else ['']
    return all(p not in ('', '.', '..') for p in parts) and not any(c in rel for c in '\0\n\r')


def verify(tree, manifest, checksum=None, databases=None):
    """Problems found, as 'path: what'. Sizes always; SHA-256 for every file, or only for the
    paths in `checksum` when given (files a copy just transferred)."""
    return describe(problems(tree, manifest, checksum, databases))


def describe(found):
    return ['%s: %s' % pair for pair in found]


def problems(tree, manifest, checksum=None, databases=None):
    """verify's findings as (path, what) pairs, for a caller that acts on the paths."""
    for rel, entry in sorted(manifest['files'].items()):
        if databases and rel.split('/', 1)[0] not in databases:
            continue
        path = os.path.join(tree, rel)
        try:
            info = os.lstat(path)
        except OSError:
            yield rel, 'missing'
            continue
        if not stat.S_ISREG(info.st_mode):
            yield rel, 'not a regular file'
        elif info.st_size != entry['size']:
            yield rel, 'size %d, manifest says %d' % (info.st_size, entry['size'])
        elif (checksum is None or rel in checksum) and file_digest(path) != entry['sha256']:
            yield rel, 'checksum differs from the manifest (corrupt)'
