#!/usr/bin/env python3
"""How much the multimer PRNG scheme moves a prediction: DeepMind's key chain (what the kit runs,
compat.runners.recycle_loop) against the fork's host-side splitting (RunModel.predict: each pass
splits the host key and the module draws its SafeKey from haiku's sequence on the pass key).

Same features (a heterodimer of the real test targets conotoxin and e2_dbd, made by the kit's
multimer CPU stage), STAND-IN random v3 weights (tests/make_test_weights.py), seed and
number of passes (tolerance 0: no early stop, so both schemes run num_recycle + 1 passes and
differ only in their keys). A second seed under DeepMind's scheme gives the scale of a key change.

  .venv/bin/python benchmarks/multimer_prng.py [--num-recycle 3] [--seed 0]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from fold_runtime.target_layout import FEATURES  # noqa: E402


def built(script, *args):
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', script)] + list(args), check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    return out.strip().splitlines()[-1]


def dimer_features(data_dir, out):
    fasta = os.path.join(out, 'dimer.fasta')
    with open(fasta, 'w') as f:
        for name in ('conotoxin', 'e2_dbd'):
            with open(os.path.join(data_dir, 'targets', name + '.fasta')) as g:
                f.write(g.read())
    subprocess.run([sys.executable, '-m', 'fold_runtime', 'msa', '--model-preset', 'multimer', '--fasta', fasta,
                    '--output-dir', out, '--data-dir', data_dir, '--db-preset', 'reduced_dbs'], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(out, 'dimer')


def fork_scheme(runner, feat, seed):
    """The fork's keys: pass r runs on split(key)[1] of the host chain, the module drawing its
    SafeKey with haiku's next_rng_key from it; same passes and state as the kit's loop."""
    import jax
    from fold_runtime.compat import confidence
    length, evo = feat['aatype'].shape[0], runner.config.model.embeddings_and_evoformer
    prev = {'prev_pos': np.zeros([length, 37, 3], np.float32),
            'prev_msa_first_row': np.zeros([length, evo.msa_channel], np.float32),
            'prev_pair': np.zeros([length, length, evo.pair_channel], np.float32)}
    key = jax.random.PRNGKey(seed)
    for _ in range(runner.config.model.num_recycle + 1):
        key, sub = jax.random.split(key)
        result, prev, _ = runner.apply(runner.params, sub, feat, prev, runner.first_key({}, sub))
    result = jax.device_get(result)
    result.update(confidence.confidence_metrics(result, asym_id=np.asarray(feat['asym_id'])))
    return result


def compare(label, a, b):
    ca = 1   # residue_constants.atom_order['CA']
    dev = np.linalg.norm(a['structure_module']['final_atom_positions'][:, ca] -
                         b['structure_module']['final_atom_positions'][:, ca], axis=-1)
    print('%-34s C-alpha max |diff| %.3f A, mean %.3f A; pLDDT max |diff| %.2f, mean pLDDT %.2f vs %.2f; '
          'ipTM %.4f vs %.4f; pTM %.4f vs %.4f' % (
              label, dev.max(), dev.mean(), np.abs(a['plddt'] - b['plddt']).max(), a['plddt'].mean(),
              b['plddt'].mean(), a['iptm'], b['iptm'], a['ptm'], b['ptm']))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--num-recycle', type=int, default=3)
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    import pickle
    from fold_runtime.gpu_stage import weights
    data_dir = built('build_test_dbs.py')
    params = built('make_test_weights.py', '--preset', 'multimer', '--models', 'model_1_multimer_v3')
    with tempfile.TemporaryDirectory() as out:
        with open(os.path.join(dimer_features(data_dir, out), FEATURES), 'rb') as f:
            feat = pickle.load(f)
    runner = weights.load_runner(params, 'model_1_multimer_v3', 'multimer', args.num_recycle)
    runner.config.model.recycle_early_stop_tolerance = 0.0
    deepmind = runner.predict(feat, args.seed)
    assert int(deepmind['num_recycles']) == args.num_recycle
    compare('DeepMind key chain vs fork keys', deepmind, fork_scheme(runner, feat, args.seed))
    compare('seed %d vs seed %d (DeepMind keys)' % (args.seed, args.seed + 1), deepmind,
            runner.predict(feat, args.seed + 1))


if __name__ == '__main__':
    main()
