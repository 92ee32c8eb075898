#!/usr/bin/env python3
"""GPU stage benchmark: relax-best against relax-all, and compile time against predict time.

On a CPU with the STAND-IN test weights by default (tests/make_test_weights.py), or on a GPU
with real weights via --data-dir. Prints, in one run on the same inputs:
  * relaxations and relax seconds for --models-to-relax best vs all (the paper's saving);
  * each model's compile seconds vs predict seconds, for two sequence lengths, with a fresh
    compilation cache (every new length recompiles: the cost batch mode's buckets remove).

  .venv/bin/python benchmarks/gpu_stage.py
  benchmarks/gpu_stage.py --data-dir /data/alphafold --model-preset monomer_ptm --num-recycle 3
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tool(script, *args):
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', script)] + list(args), check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    return out.strip().splitlines()[-1]


def kit(*args, env=None):
    subprocess.run([sys.executable, '-m', 'fold_runtime'] + [str(a) for a in args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def predict(target_dir, args, relax, cache):
    env = dict(os.environ, ALPHAFOLD_JAX_CACHE_DIR=cache)
    kit('predict', '--target-dir', target_dir, '--data-dir', args.data_dir, '--model-preset', args.model_preset,
        '--models', args.models, '--num-recycle', args.num_recycle, '--models-to-relax', relax, env=env)
    with open(os.path.join(target_dir, 'timings.json')) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data-dir', help='params/ with weights (default: stand-in test weights)')
    ap.add_argument('--model-preset', default='monomer_ptm')
    ap.add_argument('--models', default='model_1,model_2,model_3')
    ap.add_argument('--num-recycle', default='1')
    args = ap.parse_args()
    db_dir = tool('build_test_dbs.py')
    args.data_dir = args.data_dir or tool('make_test_weights.py')
    work = tempfile.mkdtemp(prefix='gpu-bench-')
    try:
        dirs = {}
        for name in ('conotoxin', 'e2_dbd'):
            kit('msa', '--fasta', os.path.join(db_dir, 'targets', name + '.fasta'), '--output-dir', work,
                '--data-dir', db_dir, '--db-preset', 'reduced_dbs')
            dirs[name] = os.path.join(work, name)
        cache = os.path.join(work, 'jax-cache')
        print('GPU stage on %s, models %s, %s recycles' % (
            'stand-in test weights (CPU)' if 'weights-' in args.data_dir else args.data_dir, args.models, args.num_recycle))
        print('\ncompile vs predict, fresh compilation cache (seconds):')
        print('  %-12s %6s %-13s %8s %8s %8s' % ('target', 'length', 'model', 'compile', 'predict', 'ratio'))
        for name, length in (('conotoxin', 24), ('e2_dbd', 82)):
            t = predict(dirs[name], args, 'none', cache)
            for model in sorted(k[len('compile_'):] for k in t if k.startswith('compile_')):
                c, p = t['compile_' + model], t['predict_' + model]
                print('  %-12s %6d %-13s %8.2f %8.2f %7.1fx' % (name, length, model, c, p, c / max(p, 1e-9)))
        print('\nrelaxation, %s (24 residues):' % 'conotoxin')
        relaxed = {}
        for relax in ('best', 'all'):
            t = predict(dirs['conotoxin'], args, relax, cache)
            relaxed[relax] = [v for k, v in t.items() if k.startswith('relax_')]
            for k in [k for k in t if k.startswith('relax_')]:
                del t[k]
            with open(os.path.join(dirs['conotoxin'], 'timings.json'), 'w') as f:
                json.dump(t, f)
            for f in os.listdir(dirs['conotoxin']):
                if f.startswith('relaxed_'):
                    os.unlink(os.path.join(dirs['conotoxin'], f))
            print('  relax %-5s %d relaxations, %7.2f s' % (relax, len(relaxed[relax]), sum(relaxed[relax])))
        print('  relax-all / relax-best time: %.2fx' % (sum(relaxed['all']) / max(sum(relaxed['best']), 1e-9)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
