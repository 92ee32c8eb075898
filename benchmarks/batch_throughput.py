#!/usr/bin/env python3
"""Batch throughput: the GPU worker against the stock way, on the same targets in one run.

Eight targets of distinct lengths (the conotoxin and prefixes of HBB_HUMAN and the E2 DNA-binding
domain, two length buckets), their features made once by the CPU stage, then the GPU stage
three ways, every model of the preset, default recycles:
  * stock: a fresh process per target that loads and compiles every model and relaxes all five
    (run_alphafold.py's loop, tests/stock_alphafold.py; no compilation cache);
  * array task: a fresh `alphafold-predict` process per target with buckets, the persistent
    compilation cache and relax-best (what a GPU job array with aftercorr would run);
  * worker: one `alphafold-batch submit` (local executor): weights loaded once, buckets, relax
    best; once with an empty compilation cache (cold) and once with the cache a previous job
    left (warm, as at a site where jobs share it).
Prints compiles, wall seconds and ratios, and the worker's GPU-busy fraction. On a CPU with the
STAND-IN test weights by default; --data-dir for real weights on a GPU.

  .venv/bin/python benchmarks/batch_throughput.py
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))
sys.path.insert(0, ROOT)
from fold_runtime.target_layout import FEATURES, FEATURES_META  # noqa: E402
LENGTHS = {'hbb': (30, 36, 44, 52, 60, 80), 'e2_dbd': (70,)}


def tool(script):
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', script)], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    return out.strip().splitlines()[-1]


def run(cmd, env=None):
    t0 = time.time()
    res = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    if res.returncode != 0:
        sys.exit('failed: %s\n%s' % (' '.join(map(str, cmd)), res.stdout[-3000:]))
    return time.time() - t0, res.stdout


def kit(*args, env=None):
    return run([sys.executable, '-m', 'fold_runtime'] + [str(a) for a in args], env)


def sequences(db_dir):
    def read(name):
        with open(os.path.join(db_dir, 'targets', name + '.fasta')) as f:
            return ''.join(l.strip() for l in f if not l.startswith('>'))
    seqs = {'conotoxin': read('conotoxin')}
    for name, lengths in LENGTHS.items():
        for n in lengths:
            seqs['%s_%d' % (name, n)] = read('hbb_human' if name == 'hbb' else name)[:n]
    return seqs


def stock_one(features_path, data_dir, num_recycle):
    """One stock process: every model loaded and compiled, all five relaxed. Prints its figures."""
    import pickle
    from fold_runtime.gpu_stage.jax_setup import CompileClock   # measures only: a jax.monitoring listener
    from fold_runtime.gpu_stage import weights
    from alphafold.relax import relax
    from stock_alphafold import stock_predict_structure
    clock = CompileClock()
    with open(features_path, 'rb') as f:
        feats = pickle.load(f)
    note = weights.test_weights_note(data_dir) or {}
    t0 = time.time()
    ranked, unrelaxed, _ = stock_predict_structure(feats, data_dir, list(weights.PRESET_MODELS['monomer_ptm']), 0,
                                                   num_recycle, note.get('config_overrides', {}))
    t1 = time.time()
    relaxer = relax.AmberRelaxation(max_iterations=0, tolerance=2.39, stiffness=10.0, exclude_residues=[],
                                    max_outer_iterations=3, use_gpu=False)
    for name in ranked[1:]:       # the best one was relaxed inside the loop
        relaxer.process(prot=unrelaxed[name])
    print(json.dumps({'compiles': clock.compiles, 'compile_s': clock.seconds, 'predict_and_load_s': t1 - t0,
                      'relax_rest_s': time.time() - t1}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data-dir', help='params/ with weights (default: stand-in test weights)')
    ap.add_argument('--num-recycle', type=int, default=3)
    ap.add_argument('--stock-one', nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stock_one:
        return stock_one(args.stock_one[0], args.stock_one[1], args.num_recycle)
    db_dir = tool('build_test_dbs.py')
    work = tempfile.mkdtemp(prefix='batch-bench-')
    try:
        data_dir = os.path.join(work, 'data')   # the test databases plus params/
        os.makedirs(data_dir)
        for name in os.listdir(db_dir):
            os.symlink(os.path.join(db_dir, name), os.path.join(data_dir, name))
        os.symlink(os.path.join(args.data_dir or tool('make_test_weights.py'), 'params'),
                   os.path.join(data_dir, 'params'))
        seqs = sequences(db_dir)
        fasta = os.path.join(work, 'targets.fasta')
        with open(fasta, 'w') as f:
            f.write(''.join('>%s\n%s\n' % kv for kv in seqs.items()))
        gpu = ['--model-preset', 'monomer_ptm', '--num-recycle', args.num_recycle, '--data-dir', data_dir]
        features = os.path.join(work, 'features')
        kit('batch', 'submit', '--fasta', fasta, '--output-dir', features, '--db-preset', 'reduced_dbs',
            '--models-to-relax', 'none', '--no-progress', *gpu)
        print('%d targets, lengths %s; GPU stage on %s, monomer_ptm (5 models), %d recycles' % (
            len(seqs), ', '.join(str(len(s)) for s in seqs.values()),
            'stand-in test weights (CPU)' if not args.data_dir else data_dir, args.num_recycle))

        stock_wall, stock_compiles = 0.0, 0
        for name in seqs:
            wall, out = run([sys.executable, __file__, '--stock-one', os.path.join(features, name, FEATURES),
                             data_dir, '--num-recycle', str(args.num_recycle)])
            stock_wall += wall
            stock_compiles += json.loads(out.strip().splitlines()[-1])['compiles']

        array_dir, cache = os.path.join(work, 'array'), os.path.join(work, 'jax-cache-array')
        shutil.copytree(features, array_dir, ignore=shutil.ignore_patterns('.batch', '*.pdb', '*.json'))
        for name in seqs:
            shutil.copy(os.path.join(features, name, FEATURES_META), os.path.join(array_dir, name))
        array_wall, array_compiles = 0.0, 0
        env = dict(os.environ, ALPHAFOLD_JAX_CACHE_DIR=cache)
        for name in seqs:
            wall, _ = kit('predict', '--target-dir', os.path.join(array_dir, name), '--buckets', '64,96,128',
                          '--models-to-relax', 'best', '--no-result-pkl', *gpu, env=env)
            array_wall += wall
            with open(os.path.join(array_dir, name, 'timings.json')) as f:
                array_compiles += sum(v for k, v in json.load(f).items() if k.startswith('compiles_'))

        worker = {}
        cache = os.path.join(work, 'jax-cache-worker')
        for run_name in ('cold', 'warm'):
            out = os.path.join(work, 'worker-' + run_name)
            os.makedirs(out)
            for name in seqs:   # the CPU stage's output; the batch reuses it after checking its meta
                shutil.copytree(os.path.join(features, name), os.path.join(out, name),
                                ignore=shutil.ignore_patterns('*.pdb', 'ranking_debug.json', 'confidence_*', 'pae_*'))
            env = dict(os.environ, ALPHAFOLD_JAX_CACHE_DIR=cache)
            wall, _ = kit('batch', 'submit', '--fasta', fasta, '--output-dir', out, '--db-preset', 'reduced_dbs',
                          '--buckets', '64,96,128', '--models-to-relax', 'best', '--no-result-pkl', '--no-progress',
                          *gpu, env=env)
            records = [json.load(open(p)) for p in glob.glob(os.path.join(out, '.batch', 'timings', 'worker-*.json'))]
            worker[run_name] = (wall, sum(r['compiles'] for r in records), records[0]['gpu_busy_fraction'],
                                records[0]['wall_s'])

        print('\n  %-44s %9s %9s %9s' % ('way', 'compiles', 'wall s', 'speed-up'))
        print('  %-44s %9d %9.1f %9s' % ('stock: fresh process per target, relax 5', stock_compiles, stock_wall, '1.00x'))
        print('  %-44s %9d %9.1f %8.2fx' % ('array task: fresh process, cache, buckets', array_compiles, array_wall,
                                            stock_wall / array_wall))
        for run_name in ('cold', 'warm'):
            wall, compiles, busy, worker_wall = worker[run_name]
            print('  %-44s %9d %9.1f %8.2fx   GPU-busy %.0f%% of the worker\'s %.1f s' % (
                'worker, %s compilation cache' % run_name, compiles, wall, stock_wall / wall, 100 * busy, worker_wall))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
