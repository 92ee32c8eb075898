"""Where versions, manifests and node-local copies live, and which copy a job should read.

Shared root:   ROOT/versions/<id>/..., ROOT/current -> versions/<id>, with current/manifest.id
Node-local:    LOCAL/<id>/..., LOCAL/current -> <id>, with current/staged.id once verified

The modulefiles (Lua and Tcl) implement choose_data_dir's rule too; keep them in step.
"""
import os

MANIFEST_ID_FILE = 'manifest.id'
STAMP_FILE = 'staged.id'


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
