"""The checked patch table: what the kit replaces in ColabFold's fork to give DeepMind v2.3.2's
results, where, and why. Applying a patch checks that the fork still has the attribute, and after,
that it holds the kit's object; config overrides refuse keys the fork does not define; a fork
version the kit was not tested with is refused unless the site accepts it. DeepMind's AlphaFold is
never patched. `alphafold-msa --explain` prints the table (fidelity.report)."""
import collections
import importlib
import logging
import os

from fold_runtime import ALPHAFOLD_DISTRIBUTIONS, distribution
from kit_common.errors import EXIT_INPUT, EXIT_MISSING, KitError

log = logging.getLogger(__name__)

FORK = ALPHAFOLD_DISTRIBUTIONS[1]
TESTED_FORK_VERSIONS = ('2.3.27',)   # requirements-fork.txt; tests/fork pass on these
ACCEPT_ENV = 'ALPHAFOLD_KIT_ACCEPT_FORK'   # a version the site has checked, e.g. set in the modulefile

# stage: 'data' (the CPU stage applies it) or 'model' (the GPU stage); replacement: 'module:name'
# of the kit's object.
Patch = collections.namedtuple('Patch', 'stage module attribute replacement reason')
PATCHES = (
    Patch('data', 'alphafold.data.pipeline', 'make_msa_features', 'fold_runtime.compat.fidelity:make_msa_features',
          'removes duplicate MSA rows (the first occurrence of each aligned sequence across all MSAs is kept, so '
          'the query appears once, as row 0); the fork keeps every copy and num_alignments grows'),
    Patch('data', 'alphafold.data.templates', '_assess_hhsearch_hit',
          'fold_runtime.compat.fidelity:assess_hhsearch_hit',
          'rejects hits aligned over <= 10% of the query, exact subsequences of the query longer than 95% of it, '
          'and templates shorter than 10 residues, besides the release-date check the fork keeps'),
    Patch('data', 'alphafold.data.mmcif_parsing', 'PDBData', 'fold_runtime.compat.fidelity:DeepMindLetters',
          'template residues read with DeepMind\'s 3-to-1 table (Biopython 1.79\'s SCOPData, vendored: MSE -> M, '
          'PCA -> E, SEC -> A, D-amino acids -> their L letter); the fork maps modified residues to X'),
    Patch('model', 'jax.config', 'jax_threefry_partitionable', 'fold_runtime.compat.restored:THREEFRY_PARTITIONABLE',
          'False, as DeepMind\'s jax 0.3.25 and 0.4.26 (the fork\'s jax defaults to True: other random keys from '
          'the same seed, so other multimer MSA samples at every recycle)'),
    Patch('model', 'alphafold.model.modules', 'jax', 'fold_runtime.compat.restored:JAX_WITH_FLOAT32_SOFTMAX',
          'the attention softmax of bfloat16 logits runs in float32, as DeepMind\'s utils.stable_softmax (the '
          'fork runs it in bfloat16: multimer models)'),
    Patch('model', 'alphafold.model.modules', 'OPM_REASSOCIATE_ROWS', 'fold_runtime.compat.restored:OPM_REASSOCIATE_ROWS',
          '0: the outer product mean contracts as DeepMind\'s does (the fork folds the output weights in first '
          'for MSAs of up to 16 rows)'),
    Patch('model', 'alphafold.model.modules_multimer', 'jax', 'fold_runtime.compat.restored:JAX_WITH_DEFAULT_PRECISION',
          'the multimer structure module runs at the default matmul precision, as DeepMind\'s (the fork forces '
          '\'highest\')'),
    Patch('model', 'alphafold.relax.amber_minimize', '_openmm_minimize', 'fold_runtime.compat.restored:openmm_minimize',
          'the force tolerance (2.39) is per nm, as DeepMind\'s a4315dd gives it to OpenMM 8 (the fork: per '
          'Angstrom, 10 times looser)'),
)


def apply(stage):
    """Install the stage's patches when the installed AlphaFold is the fork (idempotent)."""
    dist, version = distribution()
    if dist != FORK:
        return
    check_version(version)
    for patch in PATCHES:
        if patch.stage == stage:
            _apply(patch, version)
    log.info('%s %s: DeepMind v2.3.2 %s semantics applied (alphafold-msa --explain lists them)', FORK, version, stage)


def check_version(version):
    if version in TESTED_FORK_VERSIONS or os.environ.get(ACCEPT_ENV) == version:
        return
    raise KitError('%s %s is not a version the kit was tested with (%s): its patches may not give DeepMind\'s '
                   'results on it' % (FORK, version, ', '.join(TESTED_FORK_VERSIONS)),
                   'install %s==%s, or DeepMind\'s AlphaFold (the default); a site that has checked %s with the '
                   'kit\'s tests/fork sets %s=%s' % (FORK, TESTED_FORK_VERSIONS[-1], version, ACCEPT_ENV, version),
                   EXIT_INPUT)


def _apply(patch, version):
    target = _resolve(patch.module)
    where = '%s.%s' % (patch.module, patch.attribute)
    if not hasattr(target, patch.attribute):
        raise KitError('%s %s has no %s, which the kit replaces to give DeepMind\'s results' % (FORK, version, where),
                       _upgrade_fix(), EXIT_MISSING)
    module, _, name = patch.replacement.partition(':')
    new = getattr(importlib.import_module(module), name)
    if patch.module == 'jax.config':
        target.update(patch.attribute, new)
    else:
        setattr(target, patch.attribute, new)
    if getattr(target, patch.attribute) is not new:
        raise KitError('%s %s: the kit set %s, but it does not hold the kit\'s object' % (FORK, version, where),
                       _upgrade_fix(), EXIT_MISSING)


def _resolve(name):
    """A module, or an object reached from one (jax.config)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        parent, _, child = name.rpartition('.')
        return getattr(importlib.import_module(parent), child)


def _upgrade_fix():
    return 'install %s==%s (the version the kit was tested with), or DeepMind\'s AlphaFold (the default)' % (
        FORK, TESTED_FORK_VERSIONS[-1])


def override(cfg, flat):
    """cfg.update_from_flattened_dict(flat), refusing keys the installed config does not define (it
    would add them, unused, where a fork renamed one)."""
    unknown = sorted(key for key in flat if not _defined(cfg, key))
    if unknown:
        raise KitError('the installed %s %s has no model config key %s, which the kit sets to give DeepMind\'s '
                       'results' % (distribution() + (', '.join(unknown),)), _upgrade_fix(), EXIT_MISSING)
    cfg.update_from_flattened_dict(flat)


def _defined(cfg, key):
    node = cfg
    for part in key.split('.'):
        if not hasattr(node, 'keys') or part not in node:
            return False
        node = node[part]
    return True
