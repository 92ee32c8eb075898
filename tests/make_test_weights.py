#!/usr/bin/env python3
"""STAND-IN for AlphaFold's weights, which no reachable registry carries.

Makes random parameters in exactly the official format (params/params_<model>.npz, flat
'<module>//<name>' keys, read by alphafold.model.data.get_model_haiku_params; triangle-multiplication
weights unfused, as DeepMind ships monomer and multimer v1/v2 weights, fused for multimer v3, as it
ships those), made from the parameter shapes the real AlphaFold network declares (jax.eval_shape of
its haiku init: a trace, no XLA compile, which on jax 0.4.26 takes minutes per model) and filled
as haiku's initialisers would be. The test config is smaller (2 Evoformer blocks,
small MSA crops, float32 on CPU), recorded in params/test_weights.json, which the runtime reads
and announces. Every weight is random (AlphaFold's `zero_init=False`: output heads too), so models
differ and ranking has something to rank.

  make_test_weights.py --out DIR [--preset monomer_ptm|multimer] [--models model_1_ptm,...]
  make_test_weights.py --out DIR --full-size --models model_1_ptm   # full config, random arrays (shape checks)
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from fold_runtime import compat  # noqa: E402
from fold_runtime.gpu_stage import weights  # noqa: E402

SMALL_NETWORK = {
    'model.embeddings_and_evoformer.evoformer_num_block': 2,
    'model.embeddings_and_evoformer.extra_msa_stack_num_block': 1,
    'model.embeddings_and_evoformer.template.template_pair_stack.num_block': 1,
    'model.global_config.bfloat16': False,   # bfloat16 is emulated, and slow, on CPUs
    # Tracing, not compute, is what a test's predict costs on DeepMind's jax 0.4.26 (about 20 s a
    # process): the structure module's layers are unrolled Python, and chunked attention traces
    # each function up to three times. Two layers and one chunk halve it; no weight changes shape.
    'model.heads.structure_module.num_layer': 2,
    'model.global_config.subbatch_size': 1024,
}
TEST_CONFIG = dict(SMALL_NETWORK, **{'data.eval.max_msa_clusters': 32, 'data.common.max_extra_msa': 64,
                                     'data.eval.max_templates': 1})
# Multimer configs sample the MSA in the model (num_msa clusters, num_extra_msa extra rows).
MULTIMER_TEST_CONFIG = dict(SMALL_NETWORK, **{'model.embeddings_and_evoformer.num_msa': 32,
                                              'model.embeddings_and_evoformer.num_extra_msa': 64})


def test_config(preset):
    return MULTIMER_TEST_CONFIG if preset == 'multimer' else TEST_CONFIG


def init_batch(length=16):
    """Raw features of a short real sequence (HBB_HUMAN's first residues) and no templates."""
    from alphafold.data import parsers, pipeline
    seq = 'VHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVV'[:length]
    feats = pipeline.make_sequence_features(seq, 'init', len(seq))
    feats.update(pipeline.make_msa_features([parsers.Msa([seq], [[0] * len(seq)], ['init'])]))
    feats.update({
        'template_aatype': np.zeros((0, len(seq), 22), np.float32),
        'template_all_atom_masks': np.zeros((0, len(seq), 37), np.float32),
        'template_all_atom_positions': np.zeros((0, len(seq), 37, 3), np.float32),
        'template_domain_names': np.zeros((0,), object),
        'template_sequence': np.zeros((0,), object),
        'template_sum_probs': np.zeros((0, 1), np.float32),
    })
    return feats


def init_multimer_batch():
    """Model features of a heterodimer of two such chains (16 and 12 residues), merged by
    AlphaFold's own multimer functions as pipeline_multimer.DataPipeline.process merges them (each
    chain with its pairing features and the one all-zero template of a search that found none)."""
    from alphafold.data import feature_processing, msa_pairing, parsers, pipeline, pipeline_multimer
    chains = {}
    for chain_id, length in (('A', 16), ('B', 12)):
        feats = init_batch(length)
        seq = feats['sequence'][0].decode()
        pairing = pipeline.make_msa_features([parsers.Msa([seq], [[0] * len(seq)], ['init'])])
        feats.update({'%s_all_seq' % k: v for k, v in pairing.items()
                      if k in msa_pairing.MSA_FEATURES + ('msa_species_identifiers',)})
        feats.update({k: np.zeros((1,) + v.shape[1:], v.dtype) for k, v in feats.items() if k.startswith('template_')})
        chains[chain_id] = pipeline_multimer.convert_monomer_features(feats, chain_id=chain_id)
    merged = feature_processing.pair_and_merge(all_chain_features=pipeline_multimer.add_assembly_features(chains))
    return pipeline_multimer.pad_msa(merged, 512)


def flatten(params):
    return {'%s//%s' % (module, name): value
            for module, values in params.items() for name, value in values.items()}


# Modules whose parameters haiku stacks over the blocks (layer_stack): a leading block axis.
STACKED = ('evoformer_iteration', 'extra_msa_stack', '__layer_stack')


def stand_in(key, shape, rng):
    """A value as AlphaFold's haiku initialisers give it: layer-norm scales one, offsets and
    biases zero but open gates (gating_b and the triangle multiplications' gate biases one,
    gating_w zero), the point-attention weights softplus^-1(1); attention projections Glorot, other
    weights variance 1 / fan-in (AlphaFold's 'linear'), with haiku's fans, past a stacked block axis."""
    module, name = key.rsplit('//', 1)
    unit = shape[1:] if any(part in module for part in STACKED) else shape
    gate = module.endswith(('_gate', 'gating_linear')) and name == 'bias'
    constants = {'scale': 1.0, 'gating_b': 1.0, 'gating_w': 0.0, 'trainable_point_weights': 0.541324854612918}
    if name in constants or gate:
        return np.full(shape, 1.0 if gate else constants[name], np.float32)
    if name.endswith(('offset', 'bias', '_b')) or len(unit) < 2:
        return np.zeros(shape, np.float32)
    receptive = int(np.prod(unit[:-2]))
    fan_in, fan_out = unit[-2] * receptive, unit[-1] * receptive
    glorot = module.endswith('attention') and name in ('query_w', 'key_w', 'value_w', 'output_w')
    std = np.sqrt(2.0 / (fan_in + fan_out)) if glorot else np.sqrt(1.0 / fan_in)
    return (rng.standard_normal(shape) * std).astype(np.float32)


def make(out, preset, models, full_size):
    import jax
    from alphafold.model import model
    os.makedirs(os.path.join(out, 'params'), exist_ok=True)
    overrides = {} if full_size else dict(test_config(preset), **{'model.global_config.zero_init': False})
    raw = init_multimer_batch() if preset == 'multimer' else init_batch()
    traced = {}   # config -> parameter shapes (models of one config share the network)
    for index, name in enumerate(models):
        cfg = weights.model_config(name, preset, overrides=overrides)
        if repr(cfg.to_dict()) not in traced:
            runner = model.RunModel(cfg, None)
            traced[repr(cfg.to_dict())] = jax.eval_shape(runner.init, jax.random.PRNGKey(0),
                                                         compat.model_init_batch(runner, raw))
        shapes = traced[repr(cfg.to_dict())]
        rng = np.random.default_rng(index)
        if full_size:   # random arrays of the official names and shapes (shape checks only)
            flat = {k: rng.standard_normal(v.shape, np.float32) * np.float32(0.02) for k, v in flatten(shapes).items()}
        else:
            flat = {k: stand_in(k, tuple(v.shape), rng) for k, v in flatten(shapes).items()}
        save = np.savez if full_size else np.savez_compressed   # random full-size arrays do not compress
        save(os.path.join(out, 'params', 'params_%s.npz' % name), **flat)
        print('wrote params_%s.npz (%d arrays)' % (name, len(flat)), file=sys.stderr)
    if not full_size:
        note = {'test_weights': True,
                'note': 'random test weights (a stand-in for AlphaFold\'s); predictions are meaningless',
                'config_overrides': test_config(preset)}
        with open(os.path.join(out, 'params', weights.TEST_WEIGHTS_FILE), 'w') as f:
            json.dump(note, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', help='write DIR/params/ here (default: a cache keyed by this script)')
    ap.add_argument('--cache', default=os.path.expanduser('~/.cache/alphafold-hpc-kit'))
    ap.add_argument('--preset', default='monomer_ptm', choices=sorted(weights.PRESET_MODELS))
    ap.add_argument('--models', help='comma-separated subset (default: all of the preset)')
    ap.add_argument('--full-size', action='store_true', help='full config, zero values')
    args = ap.parse_args()
    models = weights.select_models(args.preset, args.models)
    if args.out:
        make(args.out, args.preset, models, args.full_size)
        print(args.out)
        return
    with open(__file__, 'rb') as f:
        key = hashlib.sha256(f.read() + repr((args.preset, models, args.full_size)).encode()).hexdigest()[:16]
    out = os.path.join(args.cache, 'weights-' + key)
    if not os.path.isdir(out):
        os.makedirs(args.cache, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix='.weights-', dir=args.cache)
        try:
            make(tmp, args.preset, models, args.full_size)
            os.rename(tmp, out)   # atomic: a half-written cache is never used
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(out)


if __name__ == '__main__':
    main()
