"""Finding the databases a preset needs under a data directory, via data_sync's registry."""
import os

from data_sync import registry
from kit_common.errors import EXIT_MISSING, KitError


def preset_paths(data_dir, preset, version='2.3'):
    """Role -> absolute path for a preset, after checking every required file exists."""
    if not data_dir:
        raise KitError('no data directory given',
                       'pass --data-dir DIR or set ALPHAFOLD_DATA_DIR (module load alphafold sets it)',
                       EXIT_MISSING)
    if not os.path.isdir(data_dir):
        raise KitError('data directory %s does not exist' % data_dir,
                       'pass --data-dir pointing at the AlphaFold databases', EXIT_MISSING)
    for db in registry.databases_for(preset, version):
        for rel in db.required:
            if not os.path.exists(os.path.join(data_dir, rel)):
                raise KitError('database file missing: %s (database %r, needed by --db-preset %s)'
                               % (os.path.join(data_dir, rel), db.name, preset),
                               'fetch it with "alphafold-data download --databases %s", or point '
                               '--data-dir at a complete copy' % db.name, EXIT_MISSING)
    return {role: os.path.join(data_dir, rel)
            for role, rel in registry.role_paths(preset, version).items()}


def fingerprint(data_dir, preset, version='2.3'):
    """Size and mtime of every database file a preset uses: what features.meta.json records,
    so that features are never reused across a database update."""
    files = {}
    for db in registry.databases_for(preset, version):
        for rel in db.required:
            st = os.stat(os.path.join(data_dir, rel))
            files[rel] = {'size': st.st_size, 'mtime': int(st.st_mtime)}
    return files
