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
    best, with the compilation cache the batch that made the features left (warm, as at a site
    where jobs share it); twice: relaxing inline ([batch] relax_workers = 0, the accelerator
    waiting, as before the relax pool) and in the relax pool (relax_workers = 1).
Prints compiles, wall seconds and ratios, and the worker's accelerator-busy fraction (prediction
time over the worker's wall time); for the two warm workers, targets per hour, predict and relax
seconds summed, and the pool's throughput over inline. --ways worker skips the stock and array-task
rows (most of the run's time). On a CPU with the STAND-IN test weights by default; --data-dir for
real weights on a GPU.

  .venv/bin/python benchmarks/batch_throughput.py [--ways worker] [--targets N] [--num-recycle R]
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
WAYS = ('stock', 'array', 'worker')
# The worker runs, in order: (name, relax_workers).
WORKER_RUNS = (('inline', 0), ('pool', 1))
BUCKETS = '64,96,128'


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


def worker_figures(records, wall):
    """The worker runs' figures from their .batch/timings/worker-*.json records and the submit's
    wall time: accelerator busy is prediction time only over the workers' wall time."""
    worker_wall = sum(r['wall_s'] for r in records)
    predict_s, relax_s = sum(r['busy_s'] for r in records), sum(r['relax_s'] for r in records)
    targets = sum(len(r['targets']) for r in records)
    return {'targets': targets, 'wall_s': wall, 'targets_per_hour': 3600.0 * targets / wall,
            'predict_s': predict_s, 'relax_s': relax_s, 'compiles': sum(r['compiles'] for r in records),
            'busy': predict_s / worker_wall if worker_wall else 0.0, 'worker_wall_s': worker_wall}


def relax_table(inline, pool):
    """The two warm workers side by side, and the pool's throughput over inline."""
    lines = ['  %-36s %7s %8s %9s %9s %8s %11s' % ('worker, warm cache', 'targets', 'wall s', 'targets/h',
                                                   'predict s', 'relax s', 'accel-busy')]
    for label, fig in (('relax inline (relax_workers = 0)', inline), ('relax pool (relax_workers = 1)', pool)):
        lines.append('  %-36s %7d %8.1f %9.1f %9.1f %8.1f %10.0f%%' % (
            label, fig['targets'], fig['wall_s'], fig['targets_per_hour'], fig['predict_s'], fig['relax_s'],
            100 * fig['busy']))
    lines.append('  pool / inline: throughput %.2fx, accelerator busy %.2fx' % (
        pool['targets_per_hour'] / inline['targets_per_hour'], pool['busy'] / inline['busy']))
    return '\n'.join(lines)


def parse_ways(text):
    ways = [w for w in text.split(',') if w]
    unknown = sorted(set(ways) - set(WAYS))
    if unknown or not ways:
        raise argparse.ArgumentTypeError('unknown way %s: choose from %s, comma-separated' % (
            ', '.join(unknown) or "''", ','.join(WAYS)))
    return ways


def stock_processes(features, seqs, data_dir, num_recycle):
    """A stock process per target (stock_one)."""
    wall, compiles = 0.0, 0
    for name in seqs:
        t, out = run([sys.executable, __file__, '--stock-one', os.path.join(features, name, FEATURES),
                      data_dir, '--num-recycle', str(num_recycle)])
        wall += t
        compiles += json.loads(out.strip().splitlines()[-1])['compiles']
    return 'stock: fresh process per target, relax 5', compiles, wall, ''


def array_tasks(work, features, seqs, gpu):
    """A fresh alphafold-predict per target, with buckets and a shared compilation cache."""
    array_dir, cache = os.path.join(work, 'array'), os.path.join(work, 'jax-cache-array')
    shutil.copytree(features, array_dir, ignore=shutil.ignore_patterns('.batch', '*.pdb', '*.json'))
    for name in seqs:
        shutil.copy(os.path.join(features, name, FEATURES_META), os.path.join(array_dir, name))
    wall, compiles = 0.0, 0
    env = dict(os.environ, ALPHAFOLD_JAX_CACHE_DIR=cache)
    for name in seqs:
        t, _ = kit('predict', '--target-dir', os.path.join(array_dir, name), '--buckets', BUCKETS,
                   '--models-to-relax', 'best', '--no-result-pkl', *gpu, env=env)
        wall += t
        with open(os.path.join(array_dir, name, 'timings.json')) as f:
            compiles += sum(v for k, v in json.load(f).items() if k.startswith('compiles_'))
    return 'array task: fresh process, cache, buckets', compiles, wall, ''


def worker_runs(work, features, fasta, seqs, gpu, cache):
    """One `alphafold-batch submit` per WORKER_RUNS entry, on the compilation cache, the site's
    relax_workers set by a site config of its own: {run name: worker_figures}."""
    figures = {}
    for run_name, relax_workers in WORKER_RUNS:
        out = os.path.join(work, 'worker-' + run_name)
        os.makedirs(out)
        for name in seqs:   # the CPU stage's output; the batch reuses it after checking its meta
            shutil.copytree(os.path.join(features, name), os.path.join(out, name),
                            ignore=shutil.ignore_patterns('*.pdb', 'ranking_debug.json', 'confidence_*', 'pae_*'))
        conf = os.path.join(work, 'site-%s.conf' % run_name)
        with open(conf, 'w') as f:
            f.write('[batch]\nrelax_workers = %d\n' % relax_workers)
        env = dict(os.environ, ALPHAFOLD_JAX_CACHE_DIR=cache, ALPHAFOLD_SITE_CONFIG=conf)
        wall, _ = kit('batch', 'submit', '--fasta', fasta, '--output-dir', out, '--db-preset', 'reduced_dbs',
                      '--buckets', BUCKETS, '--models-to-relax', 'best', '--no-result-pkl', '--no-progress',
                      *gpu, env=env)
        records = []
        for path in glob.glob(os.path.join(out, '.batch', 'timings', 'worker-*.json')):
            with open(path) as f:
                records.append(json.load(f))
        figures[run_name] = worker_figures(records, wall)
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data-dir', help='params/ with weights (default: stand-in test weights)')
    ap.add_argument('--num-recycle', type=int, default=3)
    ap.add_argument('--ways', type=parse_ways, default=list(WAYS),
                    help='the ways to run, comma-separated, of %s (default: all)' % ','.join(WAYS))
    ap.add_argument('--targets', type=int, choices=range(1, 9), metavar='N',
                    help='only the first N of the eight targets: the conotoxin, then HBB_HUMAN\'s prefixes from the shortest (default: all)')
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
        seqs = dict(list(sequences(db_dir).items())[:args.targets])
        fasta = os.path.join(work, 'targets.fasta')
        with open(fasta, 'w') as f:
            f.write(''.join('>%s\n%s\n' % kv for kv in seqs.items()))
        gpu = ['--model-preset', 'monomer_ptm', '--num-recycle', args.num_recycle, '--data-dir', data_dir]
        features, cache = os.path.join(work, 'features'), os.path.join(work, 'jax-cache-worker')
        # Its worker compiles the buckets into the cache the worker runs find (they predict again:
        # their copies of the features leave out the model files).
        kit('batch', 'submit', '--fasta', fasta, '--output-dir', features, '--db-preset', 'reduced_dbs',
            '--buckets', BUCKETS, '--models-to-relax', 'none', '--no-progress', *gpu,
            env=dict(os.environ, ALPHAFOLD_JAX_CACHE_DIR=cache))
        print('%d targets, lengths %s; GPU stage on %s, monomer_ptm (5 models), %d recycles' % (
            len(seqs), ', '.join(str(len(s)) for s in seqs.values()),
            'stand-in test weights (CPU)' if not args.data_dir else data_dir, args.num_recycle))

        rows = []   # (way, compiles, wall s, note)
        if 'stock' in args.ways:
            rows.append(stock_processes(features, seqs, data_dir, args.num_recycle))
        if 'array' in args.ways:
            rows.append(array_tasks(work, features, seqs, gpu))
        if 'worker' in args.ways:
            worker = worker_runs(work, features, fasta, seqs, gpu, cache)
            for run_name, _ in WORKER_RUNS:
                fig = worker[run_name]
                rows.append(('worker, warm cache, relax %s' % run_name,
                             fig['compiles'], fig['wall_s'], '   accelerator-busy %.0f%% of the worker\'s %.1f s' % (
                                 100 * fig['busy'], fig['worker_wall_s'])))
        stock_wall = rows[0][2] if 'stock' in args.ways else None
        print('\n  %-44s %9s %9s %9s' % ('way', 'compiles', 'wall s', 'speed-up'))
        for way, compiles, wall, note in rows:
            print('  %-44s %9d %9.1f %9s%s' % (way, compiles, wall,
                                               '%.2fx' % (stock_wall / wall) if stock_wall else '-', note))
        if 'worker' in args.ways:
            print('\n' + relax_table(worker['inline'], worker['pool']))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
