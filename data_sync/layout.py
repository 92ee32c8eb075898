"""Where versions, manifests and node-local copies live, and which copy a job should read.

Shared root:   ROOT/versions/<id>/..., ROOT/current -> versions/<id>, with current/manifest.id
Node-local:    LOCAL/<id>/..., LOCAL/current -> <id>, with current/staged.id once verified

choose_data_dir is the rule's one implementation. Each job applies it on its own node
(fold_runtime.options.resolve_data_dir), as do check-install and alphafold-data status and warm;
the modulefiles set no data directory (docs/DESIGN.md §6).
"""
import os
import re

from kit_common.errors import EXIT_MISMATCH, KitError

MANIFEST_ID_FILE = 'manifest.id'
STAMP_FILE = 'staged.id'
# What the kit writes: manifest.build's 16 hex digits, and a republished version's directory adds
# '.<YYYYmmddHHMMSS>' (store.publish).
VERSION_ID = re.compile(r'[0-9a-f]{16}(\.[0-9]{14})?')


def check_id(text, where):
    """text, when it is a version id the kit writes; else a KitError. Ids read from a tree that
    others can write become paths (stage writes LOCAL/<id>), so '../x' or '/etc' stop here."""
    if not isinstance(text, str) or not VERSION_ID.fullmatch(text):
        raise KitError('%s holds %r, which is not a version id (16 hex digits, as the kit writes them)'
                       % (where, text), 'the tree was changed by hand or tampered with: republish it '
                       '(alphafold-data sync or publish) before using it', EXIT_MISMATCH)
    return text


def read_id(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ''


def shared_dir(shared_root):
    """The published copy: ROOT/current when the root is versioned, else the root itself."""
    current = os.path.join(shared_root, 'current')
    return current if os.path.isdir(current) else shared_root


def choose_data_dir(shared_root, local_root=None):
    """(directory, reason): the node-local copy when its stamp matches the shared manifest id."""
    shared = shared_dir(shared_root)
    if not local_root:
        return shared, 'no node-local root configured'
    wanted = read_id(os.path.join(shared, MANIFEST_ID_FILE))
    local = os.path.join(local_root, 'current')
    staged = read_id(os.path.join(local, STAMP_FILE))
    if not staged:
        return shared, 'no verified node-local copy at %s' % local
    if staged != wanted:
        return shared, 'node-local copy %s is stale (%s, shared is %s)' % (local, staged, wanted or 'unversioned')
    return local, 'node-local copy %s matches manifest %s' % (local, wanted)
