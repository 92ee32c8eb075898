"""The site's shared feature cache: CPU-stage results addressed by what they were made from.

An entry is keyed by the meta's input keys (sequence hash, db preset, template date, database
manifest or fingerprint), so any target with the same sequence and inputs reuses it and costs no
CPU stage, whoever ran it first. Entries appear by rename (concurrent writers are safe: the first
wins) and are group-writable, for a cache shared by a project group.
"""
import os
import pickle
import shutil
import stat

import numpy as np

from fold_runtime import meta
from kit_common import digests, files

ENTRY_FILES = ('features.pkl', meta.META_FILE)


def key(wanted):
    return digests.json_digest({k: wanted.get(k) for k in meta.INPUT_KEYS})


def entry_dir(cache, wanted):
    k = key(wanted)
    return os.path.join(cache, k[:2], k)


def fetch(cache, wanted, target, tdir):
    """Fill tdir from a matching entry; True on a hit. The features keep this target's own
    description (domain_name), so they equal what its own CPU stage would have written."""
    entry = entry_dir(cache, wanted)
    stored = meta.load(entry) if os.path.isdir(entry) else None
    if stored is None or meta.differences(stored, wanted) or not os.path.exists(os.path.join(entry, 'features.pkl')):
        return False
    with open(os.path.join(entry, 'features.pkl'), 'rb') as f:
        feats = pickle.load(f)
    feats['domain_name'] = np.array([target.description.encode('utf-8')], dtype=np.object_)
    shutil.rmtree(os.path.join(tdir, 'msas'), ignore_errors=True)
    shutil.copytree(os.path.join(entry, 'msas'), os.path.join(tdir, 'msas'))
    files.write_json(os.path.join(tdir, meta.META_FILE), dict(wanted, features_source='cache'))
    files.write_pickle(os.path.join(tdir, 'features.pkl'), feats)
    return True


def store(cache, wanted, tdir):
    """Add tdir's CPU-stage result to the cache, unless an entry is already there."""
    final = entry_dir(cache, wanted)
    if os.path.isdir(final):
        return False
    parent = os.path.dirname(final)
    _group_dir(cache)
    _group_dir(parent)
    tmp = files.temp_dir(parent)
    try:
        for name in ENTRY_FILES:
            shutil.copy2(os.path.join(tdir, name), os.path.join(tmp, name))
        shutil.copytree(os.path.join(tdir, 'msas'), os.path.join(tmp, 'msas'))
        for directory, _, names in os.walk(tmp):
            os.chmod(directory, 0o2775)
            for name in names:
                os.chmod(os.path.join(directory, name), 0o664)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise files.io_error(final, exc)
    return files.publish_dir(tmp, final)   # atomic; another writer that got there first wins


def _group_dir(path):
    os.makedirs(path, exist_ok=True)
    mode = os.stat(path).st_mode
    if mode & 0o2070 != 0o2070:
        try:
            os.chmod(path, stat.S_IMODE(mode) | 0o2070)   # group rwx, setgid: members share it
        except PermissionError:
            pass                                         # another member's directory
