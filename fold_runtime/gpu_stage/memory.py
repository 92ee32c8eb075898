"""GPU memory policy: turned into XLA's environment variables before jax starts.

The paper's settings let long proteins (over ~1,200 residues) finish: unified memory lets XLA
spill to host RAM, and a fraction above 1 lets it use more than the GPU holds. The site's policy
([memory] of the site config, or the kit's own variables: ALPHAFOLD_MEMORY_MODE, ...) is resolved
into the options, never into raw XLA_* variables, so `auto` still decides per protein, and a
user's own XLA_* / TF_* exports always win.

Unified memory is XLA's BFC allocator with TF_FORCE_UNIFIED_MEMORY=1 and a fraction above 1, as
AlphaFold's run_docker.py sets it. XLA reads both only in its BFC allocator, so the platform
allocator (XLA_PYTHON_CLIENT_ALLOCATOR=platform, in the paper's list) would turn unified memory
off and ignore the fraction: the kit never sets it, and refuses it together with unified mode.
From jaxlib 0.4.1 the fraction is of the GPU's total memory (before: of its free memory).
"""
import logging
import os
import sys

from kit_common import site_config
from kit_common.errors import EXIT_INPUT, KitError

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD = site_config.Memory.unified_threshold
DEFAULT_UNIFIED_FRACTION = 4.0
VARIABLES = ('TF_FORCE_UNIFIED_MEMORY', 'XLA_PYTHON_CLIENT_MEM_FRACTION', 'XLA_PYTHON_CLIENT_ALLOCATOR')


def choose(mode, length, threshold=DEFAULT_THRESHOLD):
    if mode == 'auto':
        return 'unified' if length > threshold else 'default'
    return mode


def settings(mode, fraction=None):
    """XLA environment for a resolved mode; an explicit fraction applies in any mode."""
    env = {}
    if mode == 'unified':
        env = {'TF_FORCE_UNIFIED_MEMORY': '1',
               'XLA_PYTHON_CLIENT_MEM_FRACTION': str(fraction or DEFAULT_UNIFIED_FRACTION)}
    elif fraction:
        env = {'XLA_PYTHON_CLIENT_MEM_FRACTION': str(fraction)}
    return env


def backend_started():
    """Whether jax has started a backend. Importing jax is not enough: DeepMind's AlphaFold imports
    it with its residue constants, in every stage."""
    if 'jax' not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge
    except ImportError:   # jax before 0.2.26 (the legacy images)
        from jax.lib import xla_bridge
    return bool(getattr(xla_bridge, '_backends', None))


def apply(mode, length, fraction=None, threshold=DEFAULT_THRESHOLD):
    """Set the environment for the longest protein this process will predict. Must run before
    jax starts a backend: XLA reads these once, when its GPU client starts."""
    if backend_started():
        raise RuntimeError('memory settings must be applied before jax starts a backend')
    chosen = choose(mode, length, threshold)
    if chosen == 'unified' and os.environ.get('XLA_PYTHON_CLIENT_ALLOCATOR') == 'platform':
        raise KitError('XLA_PYTHON_CLIENT_ALLOCATOR=platform turns unified memory off (XLA applies '
                       'TF_FORCE_UNIFIED_MEMORY and the memory fraction only in its default allocator)',
                       'unset XLA_PYTHON_CLIENT_ALLOCATOR for unified memory, or use --memory-mode default',
                       EXIT_INPUT)
    wanted = settings(chosen, fraction)
    applied, kept = {}, {}
    for key in VARIABLES:
        if key in os.environ:
            kept[key] = os.environ[key]   # the user's own export wins
        elif key in wanted:
            os.environ[key] = applied[key] = wanted[key]
    log.info('memory mode %s (requested %s, longest protein %d residues, threshold %d)%s%s',
             chosen, mode, length, threshold, ''.join('; set %s=%s' % kv for kv in sorted(applied.items())),
             ''.join('; kept your %s=%s' % kv for kv in sorted(kept.items())))
    return chosen
