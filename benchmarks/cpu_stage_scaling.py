#!/usr/bin/env python3
"""Sharded vs unsharded jackhmmer (#26), on the same query and database in one run.

The database is made reproducibly: the test databases' UniRef90 (real globins and others) plus
random sequences (seeded) up to --sequences. The unsharded search is AlphaFold's Jackhmmer wrapper
as the CPU stage runs it (--cpus threads); the sharded one is the CPU stage's sharded search on
shards made by alphafold-data's splitter. Prints each wall time, the ratio, and checks that both
give the same Stockholm text (a benchmark that changed the result would measure nothing).

  .venv/bin/python benchmarks/cpu_stage_scaling.py                       # 300,000 sequences, --cpus 2
  .venv/bin/python benchmarks/cpu_stage_scaling.py --sequences 2000000 --shards 2 4 8 --cpus 16
"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from alphafold.data.tools import jackhmmer  # noqa: E402

from benchmarks.cpu_stage import test_data  # noqa: E402
from data_sync.shard import write_shards  # noqa: E402
from fold_runtime import compat  # noqa: E402
from fold_runtime.cpu_stage import sharded  # noqa: E402
from fold_runtime.cpu_stage.databases import Shards  # noqa: E402

AMINO_ACIDS = 'ACDEFGHIKLMNPQRSTVWY'


def make_database(path, real_fasta, sequences, seed=26):
    """real_fasta's records, then random ones (lengths 50-500) up to `sequences` in all."""
    rng = random.Random(seed)
    with open(real_fasta) as f:
        real = f.read()
    with open(path, 'w') as out:
        out.write(real)
        for i in range(sequences - real.count('>')):
            out.write('>R%d\n%s\n' % (i, ''.join(rng.choices(AMINO_ACIDS, k=rng.randint(50, 500)))))
    return sequences


def timed(func, repeat):
    """(the best wall time of repeat runs, the result)."""
    best = None
    for _ in range(repeat):
        start = time.time()
        result = func()
        best = min(best or float('inf'), time.time() - start)
    return best, result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sequences', type=int, default=300000)
    ap.add_argument('--shards', type=int, nargs='+', default=[2, 4])
    ap.add_argument('--cpus', type=int, default=2)
    ap.add_argument('--repeat', type=int, default=3, help='runs of each; the best is kept')
    ap.add_argument('--data-dir', help='the test databases (default: built, or found in the cache)')
    ap.add_argument('--max-sequences', type=int, default=compat.UNIREF_MAX_HITS, help='the cap (UniRef90\'s)')
    args = ap.parse_args()
    data_dir = args.data_dir or test_data()[0]
    query = os.path.join(data_dir, 'targets', 'hbb_human.fasta')
    binary = shutil.which('jackhmmer')
    with tempfile.TemporaryDirectory() as work:
        db = os.path.join(work, 'db.fasta')
        count = make_database(db, os.path.join(data_dir, 'uniref90', 'uniref90.fasta'), args.sequences)
        runner = jackhmmer.Jackhmmer(binary_path=binary, database_path=db, n_cpu=args.cpus)
        base, expected = timed(lambda: compat.jackhmmer_sto(runner, query, args.max_sequences), args.repeat)
        print('jackhmmer, hbb_human on %d sequences (%.2f GB), --cpus %d, best of %d'
              % (count, os.path.getsize(db) / 1e9, args.cpus, args.repeat))
        print('  %-34s %8.2f s' % ('unsharded', base))
        for n in args.shards:
            paths = [os.path.join(work, 'db.fasta.%d-of-%d' % (i + 1, n)) for i in range(n)]
            write_shards(db, paths)
            shards = Shards(count, tuple(paths))
            wall, got = timed(lambda: sharded.search(binary, query, shards, args.cpus, args.max_sequences,
                                                     os.path.join(work, 'hits-%d' % n)), args.repeat)
            print('  %-34s %8.2f s   unsharded / sharded %5.2fx   %s' % (
                '%d shards' % n, wall, base / wall, 'same result' if got == expected else 'DIFFERENT RESULT'))
            print('    %s' % sharded.describe(shards, args.cpus))
            for p in paths:
                os.unlink(p)


if __name__ == '__main__':
    main()
