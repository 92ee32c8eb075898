"""Steps after a database's sources are unpacked into the tree being built (sync.download).

registry.MMSEQS2, ColabFold's databases: the step of ColabFold's setup_databases.sh (1.6.x) for its
TSV archives, with MMSEQS_FORCE_MERGE=1 as there: `mmseqs tsv2exprofiledb <name> <name>_db`, and with
gpu (alphafold-data --gpu-dbs, the script's GPU=1) `... --gpu 1`: MMseqs2's tsv2exprofiledb then runs
makepaddedseqdb on the clusters (the padded database takes the database's own name, as ColabFold's
GPU databases do, and serves CPU searches too, in another order) and renumbers the alignments to
match; makepaddedseqdb alone would leave them keyed to the unpadded order. That needs MMseqs2
release 16 or later. The script's `createindex` is left out, with or without gpu, as ColabFold's
README runs the script for colabfold_search on the CPU (MMSEQS_NO_INDEX=1: "not required and might
hurt search speed"; the index is the size of the database again, and gpuserver reads the padded
database itself). The TSV files are removed afterwards, and the links that tsv2exprofiledb makes
(aliasdb: the clusters' headers are the members') become hard links, since a published version holds
regular files only.
"""
import logging
import os

from data_sync import registry
from kit_common import mmseqs_db, tools
from kit_common.errors import EXIT_MISMATCH, EXIT_MISSING, KitError

log = logging.getLogger(__name__)
GPU_PARAM = ' --gpu 1'   # setup_databases.sh's GPU_PAR
DB_SUFFIX = '_db'   # setup_databases.sh: the archive <name>.tar.gz becomes the database <name>_db
TSV_PARTS = ('', '_h', '_seq', '_aln')   # what tsv2exprofiledb reads: <name><part>.tsv


INSTALL_HINT = 'install MMseqs2 (apt install mmseqs2, or conda install bioconda::mmseqs2)'


def run(db, tree, gpu=False, mmseqs='mmseqs'):
    """db's preparation in tree, if it has one; gpu: ColabFold's databases padded for MMseqs2-GPU."""
    if db.prepare == registry.MMSEQS2:
        for prefix in db.paths.values():
            _colabfold(os.path.join(tree, prefix), mmseqs, db.name, gpu)


def prepared_as(db, tree, gpu):
    """Whether db's copy in tree was prepared as asked: padded for MMseqs2-GPU exactly when gpu."""
    return db.prepare != registry.MMSEQS2 or all(
        mmseqs_db.padded(os.path.join(tree, prefix)) == gpu for prefix in db.paths.values())


def _colabfold(prefix, mmseqs, name, gpu):
    tsv_base = prefix[:-len(DB_SUFFIX)]
    missing = [tsv_base + p + '.tsv' for p in TSV_PARTS if not os.path.isfile(tsv_base + p + '.tsv')]
    if missing:
        raise KitError('the archive of %s lacks %s' % (name, ', '.join(os.path.basename(m) for m in missing)),
                       'check the source (alphafold-data plan --show-urls): ColabFold\'s TSV archive of the '
                       'database is expected; current was not changed', EXIT_MISMATCH)
    if gpu:
        _require_gpu_padding(mmseqs)
    log.info('%-12s mmseqs tsv2exprofiledb%s', name, GPU_PARAM if gpu else '')
    tools.run([mmseqs, 'tsv2exprofiledb', tsv_base, prefix] + (GPU_PARAM.split() if gpu else []),
              'mmseqs tsv2exprofiledb for %s' % name, 'check the archive and the space on the data root; current '
              'was not changed', install_hint=INSTALL_HINT, env=dict(os.environ, MMSEQS_FORCE_MERGE='1'))
    for part in TSV_PARTS:
        os.unlink(tsv_base + part + '.tsv')
    _links_to_files(os.path.dirname(prefix))


def _require_gpu_padding(mmseqs):
    """setup_databases.sh's check, asked of tsv2exprofiledb itself: MMseqs2 before 16 has no --gpu."""
    help_text = tools.run([mmseqs, 'tsv2exprofiledb', '-h'], 'mmseqs tsv2exprofiledb -h', 'check the MMseqs2 install',
                          install_hint=INSTALL_HINT).stdout
    if '--gpu' not in help_text:
        raise KitError('%s cannot pad databases for MMseqs2-GPU (--gpu-dbs): its tsv2exprofiledb has no --gpu '
                       '(MMseqs2 before release 16)' % mmseqs,
                       'put MMseqs2 16 or later first on PATH (conda install bioconda::mmseqs2), or leave --gpu-dbs '
                       'out; current was not changed', EXIT_MISSING)


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
