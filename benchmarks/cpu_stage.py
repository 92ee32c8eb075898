#!/usr/bin/env python3
"""CPU stage benchmark: stock DataPipeline vs alphafold-msa --serial vs concurrent alphafold-msa.

Same targets, same databases, same binaries, in one run. Prints each wall time, the ratios, and
the concurrent stage's wall time against its slowest single search (the paper's bound).

  .venv/bin/python benchmarks/cpu_stage.py                      # the real-data test databases
  .venv/bin/python benchmarks/cpu_stage.py --data-dir /data/af --fasta a.fasta b.fasta --cpus 20
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))


def test_data():
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'build_test_dbs.py')],
                         check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    data_dir = out.strip().splitlines()[-1]
    fastas = sorted(os.path.join(data_dir, 'targets', f) for f in os.listdir(os.path.join(data_dir, 'targets')))
    return data_dir, fastas


def stock(data_dir, preset, fastas, work):
    from stock_alphafold import stock_features
    start = time.time()
    for fasta in fastas:
        stock_features(data_dir, preset, fasta, os.path.join(work, os.path.basename(fasta)))
    return time.time() - start


def ours(data_dir, preset, fastas, work, cpus, serial):
    cmd = [sys.executable, '-m', 'fold_runtime', 'msa', '--fasta'] + fastas + [
        '--output-dir', work, '--data-dir', data_dir, '--db-preset', preset, '--cpus', str(cpus)]
    start = time.time()
    subprocess.run(cmd + (['--serial'] if serial else []), check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.time() - start
    slowest = 0.0
    for fasta in fastas:
        name = os.path.splitext(os.path.basename(fasta))[0]
        with open(os.path.join(work, name, 'timings.json')) as f:
            t = json.load(f)
        # The template search waits for UniRef90, so that chain counts as one search.
        chains = [t['search_uniref90'] + t['search_pdb70']] + [
            v for k, v in t.items() if k.startswith('search_') and k not in ('search_uniref90', 'search_pdb70')]
        slowest += max(chains)
    return wall, slowest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data-dir', help='AlphaFold data directory (default: the test databases)')
    ap.add_argument('--fasta', nargs='+', help='targets (default: the test targets)')
    ap.add_argument('--db-preset', default='full_dbs', choices=('full_dbs', 'reduced_dbs'))
    ap.add_argument('--cpus', type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument('--repeat', type=int, default=3, help='runs of each mode; the best is kept')
    args = ap.parse_args()
    data_dir, fastas = test_data() if not args.data_dir else (args.data_dir, args.fasta)
    results = {'stock': [], 'serial': [], 'concurrent': []}
    slowest = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as work:
            results['stock'].append(stock(data_dir, args.db_preset, fastas, os.path.join(work, 's')))
            results['serial'].append(ours(data_dir, args.db_preset, fastas, os.path.join(work, 'r'),
                                          args.cpus, True)[0])
            wall, slow = ours(data_dir, args.db_preset, fastas, os.path.join(work, 'c'), args.cpus, False)
            results['concurrent'].append(wall)
            slowest.append(slow)
    best = {k: min(v) for k, v in results.items()}
    print('CPU stage, %d targets, %s, %d cpus, best of %d' % (len(fastas), args.db_preset, args.cpus, args.repeat))
    for k in ('stock', 'serial', 'concurrent'):
        print('  %-28s %8.2f s' % (k, best[k]))
    print('  %-28s %8.2f s' % ('slowest single search chain', min(slowest)))
    print('ratios:')
    print('  stock / concurrent           %8.2fx' % (best['stock'] / best['concurrent']))
    print('  serial / concurrent          %8.2fx' % (best['serial'] / best['concurrent']))
    print('  concurrent / slowest search  %8.2fx  (paper target on >=20 cores: <= 1.1x)'
          % (best['concurrent'] / min(slowest)))


if __name__ == '__main__':
    main()
