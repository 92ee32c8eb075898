"""The kit's objects that replace parts of ColabFold's fork in the GPU stage (compat.patches lists
where and why). Imports jax and OpenMM, so only the GPU stage imports it; DeepMind's AlphaFold
never sees these objects."""
import contextlib

import jax
import jax.numpy as jnp
from openmm import unit

from alphafold.relax import amber_minimize

# DeepMind v2.3.2 ran jax 0.3.25, whose threefry keys were not partitionable.
THREEFRY_PARTITIONABLE = False
# DeepMind's outer product mean contracts the same way at every MSA depth.
OPM_REASSOCIATE_ROWS = 0


class Namespace(object):
    """A module as one importer sees it: its attributes, with the named ones replaced."""

    def __init__(self, module, **replaced):
        self.__dict__.update(replaced)
        self._module = module

    def __getattr__(self, name):   # called only for names not replaced
        return getattr(self._module, name)


def float32_softmax(logits, *args, **kwargs):
    """DeepMind's utils.stable_softmax: bfloat16 logits' softmax computed in float32."""
    return jax.nn.softmax(logits.astype(jnp.float32), *args, **kwargs).astype(logits.dtype)


def _default_precision(precision):
    """DeepMind sets no matmul precision around the structure module."""
    del precision
    return contextlib.nullcontext()


# What alphafold.model.modules calls jax: its two attention softmaxes run in float32.
JAX_WITH_FLOAT32_SOFTMAX = Namespace(jax, nn=Namespace(jax.nn, softmax=float32_softmax))
# What alphafold.model.modules_multimer calls jax: no 'highest' precision context.
JAX_WITH_DEFAULT_PRECISION = Namespace(jax, default_matmul_precision=_default_precision)

_fork_openmm_minimize = amber_minimize._openmm_minimize


def openmm_minimize(pdb_str, max_iterations, tolerance, **kwargs):
    """The fork's minimisation with DeepMind's force tolerance unit: the fork gives the tolerance
    in kcal/mol per Angstrom, DeepMind's a4315dd (OpenMM 8) in kcal/mol per nm, 10 times tighter."""
    per_nm = tolerance.value_in_unit(amber_minimize.ENERGY / amber_minimize.LENGTH) * amber_minimize.ENERGY / unit.nanometer
    return _fork_openmm_minimize(pdb_str, max_iterations=max_iterations, tolerance=per_nm, **kwargs)
