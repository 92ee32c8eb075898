"""Finding the databases a preset needs under a data directory, via data_sync's registry, and
their shards, via the manifest."""
import os
from typing import NamedTuple, Tuple

from data_sync import manifest, registry
from kit_common.errors import EXIT_MISMATCH, EXIT_MISSING, KitError


class Shards(NamedTuple):
    """A database split by alphafold-data shard."""
    sequences: int            # the whole database's: jackhmmer's -Z
    paths: Tuple[str, ...]    # in database order


def preset_paths(data_dir, preset, version='2.3', multimer=False):
    """Role -> absolute path for a preset (multimer: AlphaFold-Multimer's searches; registry.MMSEQS2:
    --msa-mode mmseqs2's), after checking every required file exists."""
    if not data_dir:
        raise KitError('no data directory given',
                       'pass --data-dir DIR, set ALPHAFOLD_DATA_DIR, or set [data] shared_root in the site config '
                       '(module load alphafold sets ALPHAFOLD_SITE_CONFIG)',
                       EXIT_MISSING)
    if not os.path.isdir(data_dir):
        raise KitError('data directory %s does not exist' % data_dir,
                       'pass --data-dir pointing at the AlphaFold databases', EXIT_MISSING)
    for db in registry.databases_for(preset, version, multimer):
        for rel in db.required:
            if not os.path.exists(os.path.join(data_dir, rel)):
                raise KitError('database file missing: %s (database %r, needed by %s)'
                               % (os.path.join(data_dir, rel), db.name, _needed_by(db, preset)),
                               _how_to_get(db, data_dir), EXIT_MISSING)
    return {role: os.path.join(data_dir, rel)
            for role, rel in registry.role_paths(preset, version, multimer).items()}


def _needed_by(db, preset):
    if db.name in registry.PRESETS['multimer_extras']:
        return '--model-preset multimer'
    return '--msa-mode %s' % preset if preset == registry.MMSEQS2 else '--db-preset %s' % preset


def _how_to_get(db, data_dir):
    if db.name in registry.COLABFOLD:
        return ('fetch it with "alphafold-data download --databases %s", or make ColabFold\'s databases with its '
                'setup_databases.sh (MMSEQS_NO_INDEX=1) and put their %s_db* files in %s'
                % (db.name, db.name, os.path.join(data_dir, registry.COLABFOLD_DIR)))
    return ('fetch it with "alphafold-data download --databases %s", or point --data-dir at a complete copy'
            % db.name)


def fingerprint(data_dir, preset, version='2.3', multimer=False):
    """Size and mtime of every database file a preset uses: what features.meta.json records,
    so that features are never reused across a database update."""
    files = {}
    for db in registry.databases_for(preset, version, multimer):
        for rel in db.required:
            st = os.stat(os.path.join(data_dir, rel))
            files[rel] = {'size': st.st_size, 'mtime': int(st.st_mtime)}
    return files


def shards(data_dir):
    """Database path -> Shards, for the databases data_dir's manifest records as sharded
    (alphafold-data shard). Every shard must match its manifest entry by size (a full checksum is
    alphafold-data verify's): a search never reads a shard the manifest does not vouch for."""
    recorded = manifest.load(data_dir) if data_dir else None
    found = {}
    for name, record in sorted((recorded or {}).get('shards', {}).items()):
        paths = [rel for rel, _ in record['shards']]
        bad = manifest.verify(data_dir, {'files': {rel: recorded['files'][rel] for rel in paths}}, checksum=())
        if bad:
            raise KitError('the shards of %s in %s do not match the manifest: %s' % (name, data_dir, '; '.join(bad)),
                           'alphafold-data verify --databases %s tells what else is wrong; alphafold-data shard '
                           '--shards 1 --databases %s searches it unsharded, or shard it again after a repair '
                           '(alphafold-data sync --verify full)' % (name, name), EXIT_MISMATCH)
        found[os.path.join(data_dir, record['fasta'])] = Shards(
            record['sequences'], tuple(os.path.join(data_dir, rel) for rel in paths))
    return found
