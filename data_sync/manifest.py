"""Manifests: the size and SHA-256 of every file of a database version, and the version's id.

manifest.json lists files (relative path -> size, sha256) and, where known, the archives they
came from; manifest.id is a short hash of the file list, so equal trees get equal ids.
"""
import json
import os

from data_sync.layout import MANIFEST_ID_FILE, STAMP_FILE
from kit_common.digests import file_digest, json_digest
from kit_common.files import write_json, write_text

MANIFEST_FILE = 'manifest.json'
OWN_FILES = (MANIFEST_FILE, MANIFEST_ID_FILE, STAMP_FILE)


def walk(tree):
    """Relative paths of the data files under tree (the manifest's own files excluded)."""
    for directory, dirs, files in os.walk(tree):
        dirs.sort()
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(directory, name), tree)
            if rel not in OWN_FILES and not name.startswith('.'):   # .tmp-*, .in-use: not data
                yield rel


def build(tree, archives=None):
    files = {rel: {'size': os.path.getsize(os.path.join(tree, rel)), 'sha256': file_digest(os.path.join(tree, rel))}
             for rel in walk(tree)}
    ident = json_digest(files)[:16]
    return {'id': ident, 'files': files, 'archives': archives or {}}


def write(tree, manifest):
    write_json(os.path.join(tree, MANIFEST_FILE), manifest)
    write_text(os.path.join(tree, MANIFEST_ID_FILE), manifest['id'] + '\n')


def load(tree):
    path = os.path.join(tree, MANIFEST_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def verify(tree, manifest, checksum=None, databases=None):
    """Problems found, as 'path: what'. Sizes always; SHA-256 for every file, or only for the
    paths in `checksum` when given (files a copy just transferred)."""
    problems = []
    for rel, entry in sorted(manifest['files'].items()):
        if databases and rel.split('/', 1)[0] not in databases:
            continue
        path = os.path.join(tree, rel)
        if not os.path.exists(path):
            problems.append('%s: missing' % rel)
        elif os.path.getsize(path) != entry['size']:
            problems.append('%s: size %d, manifest says %d' % (rel, os.path.getsize(path), entry['size']))
        elif (checksum is None or rel in checksum) and file_digest(path) != entry['sha256']:
            problems.append('%s: checksum differs from the manifest (corrupt)' % rel)
    return problems
