"""The full-size AlphaFold config: parameter names and shapes load through the runtime's loader.

STAND-IN weights again (random arrays in the official format, since no real weights can be fetched),
but at full size: 48 Evoformer blocks, checked by tracing the real network, not by running it.
"""
import os
import subprocess
import sys

import numpy as np

from conftest import ROOT


def test_full_size_params_load_into_the_full_network(tmp_path):
    subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'make_test_weights.py'), '--out',
                    str(tmp_path), '--full-size', '--models', 'model_1_ptm'], check=True)
    assert not (tmp_path / 'params' / 'test_weights.json').exists()
    import jax
    from fold_runtime.gpu_stage import weights
    from fold_runtime import compat
    from make_test_weights import init_batch
    runner = weights.load_runner(str(tmp_path), 'model_1_ptm', 'monomer_ptm')
    stack = runner.params['alphafold/alphafold_iteration/evoformer/evoformer_iteration/msa_transition/transition1']
    assert stack['weights'].shape == (48, 256, 1024)
    n_params = sum(int(np.prod(v.shape)) for m in runner.params.values() for v in m.values())
    assert n_params > 90_000_000   # AlphaFold2 monomer_ptm has ~93M parameters
    # DeepMind ships monomer weights unfused, and the runtime runs them so (compat.fidelity).
    evo = 'alphafold/alphafold_iteration/evoformer/evoformer_iteration/triangle_multiplication_outgoing/'
    assert evo + 'left_projection' in runner.params and evo + 'projection' not in runner.params
    # Tracing DeepMind's RunModel.apply with these parameters fails on any name or shape the network
    # does not expect.
    batch = compat.model_init_batch(runner, init_batch())
    out = jax.eval_shape(runner.apply, runner.params, jax.random.PRNGKey(0), batch)
    assert out['structure_module']['final_atom_positions'].shape == (16, 37, 3)


def test_full_size_multimer_v3_params_load_into_the_full_network(tmp_path):
    """Multimer v3 as DeepMind ships it: fused triangle-multiplication projections, 48 blocks."""
    subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'make_test_weights.py'), '--out', str(tmp_path),
                    '--full-size', '--preset', 'multimer', '--models', 'model_1_multimer_v3'], check=True)
    import jax
    from fold_runtime.gpu_stage import weights
    from make_test_weights import init_multimer_batch
    runner = weights.load_runner(str(tmp_path), 'model_1_multimer_v3', 'multimer')
    assert runner.multimer_mode and runner.config.model.num_recycle == 20
    evo = 'alphafold/alphafold_iteration/evoformer/evoformer_iteration/'
    assert runner.params[evo + 'msa_transition/transition1']['weights'].shape == (48, 256, 1024)
    assert evo + 'triangle_multiplication_outgoing/projection' in runner.params
    assert evo + 'triangle_multiplication_outgoing/left_projection' not in runner.params
    n_params = sum(int(np.prod(v.shape)) for m in runner.params.values() for v in m.values())
    assert n_params > 90_000_000   # AlphaFold-Multimer v3 has ~93M parameters
    feat = init_multimer_batch()
    length = feat['aatype'].shape[0]
    result = jax.eval_shape(runner.apply, runner.params, jax.random.PRNGKey(0), feat)
    assert result['structure_module']['final_atom_positions'].shape == (length, 37, 3)
    assert result['predicted_aligned_error']['logits'].shape == (length, length, 64)
