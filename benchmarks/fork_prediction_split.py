#!/usr/bin/env python3
"""How far the kit's GPU stage on ColabFold's fork is from DeepMind's prediction, split by cause.

Not a pass/fail test: it measures. Same processed features (DeepMind's input pipeline, made once),
seed, STAND-IN test weights (tests/make_test_weights.py) and model config, three predictions:
  deepmind       DeepMind's RunModel on DeepMind's stack (.venv: a4315dd, jax 0.4.26);
  deepmind-jax   DeepMind's network code (modules.AlphaFold, as RunModel applies it; DeepMind's
                 archive unpacked, first on the path) on the fork's jax and XLA (.venv-fork);
  kit-on-fork    the kit's runner on the fork (its modules with the kit's patches, same jax).
deepmind vs deepmind-jax is what the jax/XLA version causes; deepmind-jax vs kit-on-fork what the
fork's code causes after the kit's patches. C-alpha positions are compared as predicted (no
superposition). Both venvs run XLA at the tests' optimisation level (tests/conftest.py).

  .venv/bin/python benchmarks/fork_prediction_split.py [--target conotoxin] [--num-recycle 1]
"""
import argparse
import glob
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fidelity import built  # noqa: E402  (the cached test data and weights)
from fold_runtime.target_layout import FEATURES  # noqa: E402

FORK_PYTHON = os.path.join(ROOT, '.venv-fork', 'bin', 'python')
DEEPMIND_ARCHIVE = os.path.join(ROOT, '..', 'shared', 'upstream', 'alphafold', 'alphafold-a4315dd.tar.gz')
MODEL, PRESET, CA = 'model_1_ptm', 'monomer_ptm', 1
SIDES = ('deepmind', 'deepmind-jax', 'kit-on-fork')


def predict(side, work, weights_dir, num_recycle):
    """One side's prediction of work/processed.npz (deepmind makes it from work/features.pkl)."""
    from fold_runtime.compat import confidence
    from fold_runtime.gpu_stage import weights
    if side == 'deepmind-jax':
        import haiku as hk
        import jax
        _clip_with_old_names()
        from alphafold.model import config, data, modules
        cfg = config.model_config(MODEL)   # as weights.model_config sets it, which the fork's metadata would patch
        cfg.model.num_recycle = cfg.data.common.num_recycle = num_recycle
        cfg.data.eval.num_ensemble = 1
        cfg.update_from_flattened_dict(weights.test_weights_note(weights_dir)['config_overrides'])
        params = data.get_model_haiku_params(model_name=MODEL, data_dir=weights_dir)
        apply = jax.jit(hk.transform(lambda batch: modules.AlphaFold(cfg.model)(
            batch, is_training=False, compute_loss=False, ensemble_representations=True)).apply)
        processed = load(work, 'processed.npz')
        result = jax.device_get(apply(params, jax.random.PRNGKey(0), processed))
        result.update(confidence.confidence_metrics(result))
    else:
        runner = weights.load_runner(weights_dir, MODEL, PRESET, num_recycle)
        if side == 'deepmind':
            processed = runner.process_features(features(work), random_seed=0)
            save(work, 'processed.npz', {k: v for k, v in processed.items() if np.asarray(v).dtype != object})
        result = runner.predict(load(work, 'processed.npz'), random_seed=0)
    save(work, side + '.npz', {'ca': np.asarray(result['structure_module']['final_atom_positions'])[:, CA],
                               'plddt': np.asarray(result['plddt']), 'ptm': result['ptm'],
                               'max_pae': result['max_predicted_aligned_error']})


def _clip_with_old_names():
    """jnp.clip(x, a_min=, a_max=) as DeepMind's code calls it: newer jax names them min and max
    (same function). The only call of DeepMind's network code the fork's jax refuses."""
    import jax.numpy as jnp
    clip = jnp.clip

    def old_names(x, a_min=None, a_max=None, **kwargs):
        return clip(x, a_min, a_max, **kwargs)
    jnp.clip = old_names


def features(work):
    with open(os.path.join(work, FEATURES), 'rb') as f:   # the CPU stage's, made by this script
        return pickle.load(f)


def load(work, name):
    """Arrays passed between the sides (npz: the venvs' numpy versions cannot read each other's pickles)."""
    with np.load(os.path.join(work, name)) as stored:
        return dict(stored)


def save(work, name, arrays):
    np.savez(os.path.join(work, name), **{k: np.asarray(v) for k, v in arrays.items()})


def run_side(python, side, work, weights_dir, num_recycle, pythonpath):
    env = dict(os.environ, PYTHONPATH=pythonpath)
    env.setdefault('XLA_FLAGS', '--xla_backend_optimization_level=0')
    subprocess.run([python, os.path.abspath(__file__), '--side', side, '--work', work, '--weights', weights_dir,
                    '--num-recycle', str(num_recycle)], check=True, env=env, cwd=ROOT)


def compare(a, b):
    return ('C-alpha max |diff| %.1e A, mean %.1e A; pLDDT max |diff| %.1e; pTM %.6f vs %.6f; max PAE %.2f vs %.2f'
            % (np.abs(a['ca'] - b['ca']).max(), np.linalg.norm(a['ca'] - b['ca'], axis=-1).mean(),
               np.abs(a['plddt'] - b['plddt']).max(), a['ptm'], b['ptm'], a['max_pae'], b['max_pae']))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--target', default='conotoxin')
    ap.add_argument('--num-recycle', type=int, default=1)
    ap.add_argument('--side', choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument('--work', help=argparse.SUPPRESS)
    ap.add_argument('--weights', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        return predict(args.side, args.work, args.weights, args.num_recycle)
    data_dir, weights_dir = built('build_test_dbs.py'), built('make_test_weights.py')
    work = tempfile.mkdtemp(prefix='fork-split-')
    try:
        measure(args, data_dir, weights_dir, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args, data_dir, weights_dir, work):
    fasta = os.path.join(data_dir, 'targets', args.target + '.fasta')
    subprocess.run([sys.executable, '-m', 'fold_runtime', 'msa', '--fasta', fasta, '--output-dir', work,
                    '--data-dir', data_dir], check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.rename(os.path.join(work, args.target, FEATURES), os.path.join(work, FEATURES))
    with tarfile.open(DEEPMIND_ARCHIVE) as tar:
        tar.extractall(os.path.join(work, 'deepmind'))
    deepmind_source = glob.glob(os.path.join(work, 'deepmind', '*'))[0]
    run_side(sys.executable, 'deepmind', work, weights_dir, args.num_recycle, ROOT)
    run_side(FORK_PYTHON, 'deepmind-jax', work, weights_dir, args.num_recycle, deepmind_source + os.pathsep + ROOT)
    run_side(FORK_PYTHON, 'kit-on-fork', work, weights_dir, args.num_recycle, ROOT)
    results = {side: load(work, side + '.npz') for side in SIDES}
    print('%s, %s, %d recycle(s), STAND-IN test weights, seed 0' % (args.target, MODEL, args.num_recycle))
    print('jax/XLA version (DeepMind code, jax 0.4.26 vs the fork\'s):  %s' % compare(results['deepmind'],
                                                                                    results['deepmind-jax']))
    print('fork code after the kit\'s patches (same jax):            %s' % compare(results['deepmind-jax'],
                                                                                   results['kit-on-fork']))
    print('total (DeepMind vs the kit on the fork):                  %s' % compare(results['deepmind'],
                                                                                   results['kit-on-fork']))


if __name__ == '__main__':
    main()
