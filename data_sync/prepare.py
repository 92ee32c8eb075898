"""Steps after a database's sources are unpacked into the tree being built (sync.download).

registry.MMSEQS2, ColabFold's databases: the step of ColabFold's setup_databases.sh (1.6.x) for its
TSV archives, with MMSEQS_FORCE_MERGE=1 as there: `mmseqs tsv2exprofiledb <name> <name>_db`. The
script's `createindex` is left out, as ColabFold's README runs it for colabfold_search
(MMSEQS_NO_INDEX=1: "not required and might hurt search speed"; the index is the size of the
database again, and MMseqs2 builds what it needs while searching). makepaddedseqdb is the script's
GPU step: the kit has no GPU search yet. The TSV files are removed afterwards, and the links that
tsv2exprofiledb makes (aliasdb: the clusters' headers are the members') become hard links, since a
published version holds regular files only.
"""
import logging
import os

from data_sync import registry
from kit_common import tools
from kit_common.errors import EXIT_MISMATCH, KitError

log = logging.getLogger(__name__)
DB_SUFFIX = '_db'   # setup_databases.sh: the archive <name>.tar.gz becomes the database <name>_db
TSV_PARTS = ('', '_h', '_seq', '_aln')   # what tsv2exprofiledb reads: <name><part>.tsv


def run(db, tree, mmseqs='mmseqs'):
    """db's preparation in tree, if it has one."""
    if db.prepare == registry.MMSEQS2:
        for prefix in db.paths.values():
            _colabfold(os.path.join(tree, prefix), mmseqs, db.name)


def _colabfold(prefix, mmseqs, name):
    tsv_base = prefix[:-len(DB_SUFFIX)]
    missing = [tsv_base + p + '.tsv' for p in TSV_PARTS if not os.path.isfile(tsv_base + p + '.tsv')]
    if missing:
        raise KitError('the archive of %s lacks %s' % (name, ', '.join(os.path.basename(m) for m in missing)),
                       'check the source (alphafold-data plan --show-urls): ColabFold\'s TSV archive of the '
                       'database is expected; current was not changed', EXIT_MISMATCH)
    log.info('%-12s mmseqs tsv2exprofiledb', name)
    tools.run([mmseqs, 'tsv2exprofiledb', tsv_base, prefix], 'mmseqs tsv2exprofiledb for %s' % name,
              'check the archive and the space on the data root; current was not changed',
              install_hint='install MMseqs2 (apt install mmseqs2, or conda install bioconda::mmseqs2)',
              env=dict(os.environ, MMSEQS_FORCE_MERGE='1'))
    for part in TSV_PARTS:
        os.unlink(tsv_base + part + '.tsv')
    _links_to_files(os.path.dirname(prefix))


def _links_to_files(folder):
    """Each symbolic link in folder to a file of folder becomes a hard link to that file."""
    for entry in os.scandir(folder):
        if entry.is_symlink():
            target = os.path.realpath(entry.path)
            if os.path.dirname(target) != os.path.realpath(folder) or not os.path.isfile(target):
                raise KitError('%s, made by MMseqs2, links out of %s' % (entry.path, folder),
                               'report this: the database folder must hold its own files only', EXIT_MISMATCH)
            os.unlink(entry.path)
            os.link(target, entry.path)
