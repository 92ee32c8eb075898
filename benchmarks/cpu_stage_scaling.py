#!/usr/bin/env python3
"""Sharded vs unsharded jackhmmer (#26), on the same query and database in one run.

The database is made reproducibly (seeded): the test databases' UniRef90 (real globins and others),
mutated copies of its records (--homologs of the whole, mutated at 5-80%: hits from strong to
below the threshold, as a real database holds for a globin) and random sequences up to
--sequences. The unsharded search is AlphaFold's Jackhmmer wrapper as the CPU stage runs it (--cpus
threads); the sharded one is the CPU stage's sharded search on shards made by alphafold-data's
splitter. Prints each wall time and CPU seconds (the searches' processes), the ratio, and checks
that both give the same Stockholm text (a benchmark that changed the result would measure nothing).

Then the projection: each shard of the finest split searched alone on one thread (its first
pass and the copy of its hits) and the second pass alone on --cpus threads. With C cores the CPU
stage searches C shards at once, one thread each, so the projected wall time is the slowest
shard's share, (sum of the shard times) / C scaled by the measured slowest/mean imbalance, plus
the second pass as measured here (it searches the hits only and is not split further).

  .venv/bin/python benchmarks/cpu_stage_scaling.py      # 2,000,000 sequences, --cpus 2, 2/4/8 shards
  .venv/bin/python benchmarks/cpu_stage_scaling.py --sequences 500000 --shards 2 4 --repeat 3
"""
import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.cpu_stage import test_data  # noqa: E402
from data_sync.shard import write_shards  # noqa: E402
from fold_runtime import compat  # noqa: E402
from fold_runtime.cpu_stage import sharded  # noqa: E402
from fold_runtime.cpu_stage.databases import Shards  # noqa: E402

AMINO_ACIDS = 'ACDEFGHIKLMNPQRSTVWY'
PROJECTED_CORES = (16, 32, 64)


def make_database(path, real_fasta, sequences, homologs, seed=26, block=100000):
    """real_fasta's records, then homologs x sequences mutated copies of them and random ones
    (lengths 50-500) up to `sequences` in all, shuffled together (numpy's PCG64: the same bytes
    for the same seed). The random residues are drawn `block` records at a time, so memory stays
    under a gigabyte at any size (all at once, numpy's int64 draws take 8 bytes a residue: 22 GB
    for 10^7 sequences)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(AMINO_ACIDS.encode(), dtype=np.uint8)
    with open(real_fasta) as f:
        real = f.read()
    seqs = [np.frombuffer(''.join(r.split('\n')[1:]).encode(), dtype=np.uint8) for r in real.split('>')[1:]]
    n = sequences - len(seqs)
    homolog = rng.random(n) < homologs
    lengths = rng.integers(50, 501, n)
    with open(path, 'wb') as out:
        out.write(real.encode())
        for first in range(0, n, block):
            residues = letters[rng.integers(0, len(letters), int(lengths[first:first + block].sum()))]
            ends = np.cumsum(lengths[first:first + block])
            for i in range(first, min(n, first + block)):
                if homolog[i]:
                    seq = seqs[rng.integers(len(seqs))].copy()
                    change = rng.random(len(seq)) < rng.uniform(0.05, 0.8)
                    seq[change] = letters[rng.integers(0, len(letters), int(change.sum()))]
                    out.write(b'>H%d\n%s\n' % (i, seq.tobytes()))
                else:
                    end = ends[i - first]
                    out.write(b'>R%d\n%s\n' % (i, residues[end - lengths[i]:end].tobytes()))
    return sequences


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(func, repeat):
    """(the best wall time of repeat runs, CPU seconds of that run's processes, the result)."""
    best = None
    for _ in range(repeat):
        start, cpu = time.time(), cpu_seconds()
        result = func()
        run = (time.time() - start, cpu_seconds() - cpu)
        best = min(best or run, run)
    return best[0], best[1], result


def per_shard(binary, query, shards, cpus, cap, prefix):
    """(each shard's first pass and copy on one thread, in seconds; the second pass on cpus)."""
    times, gathered = [], []
    for i, path in enumerate(shards.paths):
        start = time.time()
        tbl = compat.jackhmmer_result(sharded._runner(binary, path, shards.sequences, 1, tblout=True), query, cap)['tbl']
        names = {line.split()[0].encode() for line in tbl.splitlines() if line.strip() and line[0] != '#'}
        gathered.append('%s.%d.fasta' % (prefix, i))
        sharded._copy_records(path, names, gathered[-1])
        times.append(time.time() - start)
    start = time.time()
    sharded._concatenate(gathered, prefix + '.fasta')
    compat.jackhmmer_sto(sharded._runner(binary, prefix + '.fasta', shards.sequences, cpus), query, cap)
    return times, time.time() - start


def split(db, count, n, work):
    paths = [os.path.join(work, 'db.fasta.%d-of-%d' % (i + 1, n)) for i in range(n)]
    write_shards(db, paths)
    return Shards(count, tuple(paths))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sequences', type=int, default=2000000)
    ap.add_argument('--homologs', type=float, default=0.005, help='fraction of mutated copies of real records')
    ap.add_argument('--shards', type=int, nargs='+', default=[2, 4, 8])
    ap.add_argument('--cpus', type=int, default=2)
    ap.add_argument('--repeat', type=int, default=1, help='runs of each; the best is kept')
    ap.add_argument('--data-dir', help='the test databases (default: built, or found in the cache)')
    ap.add_argument('--max-sequences', type=int, default=compat.UNIREF_MAX_HITS, help='the cap (UniRef90\'s)')
    args = ap.parse_args()
    data_dir = args.data_dir or test_data()[0]
    query = os.path.join(data_dir, 'targets', 'hbb_human.fasta')
    binary = shutil.which('jackhmmer')
    with tempfile.TemporaryDirectory() as work:
        db = os.path.join(work, 'db.fasta')
        start = time.time()
        count = make_database(db, os.path.join(data_dir, 'uniref90', 'uniref90.fasta'), args.sequences, args.homologs)
        print('database: %d sequences, %.1f%% mutated copies of real ones (%.2f GB), made in %.0f s'
              % (count, 100 * args.homologs, os.path.getsize(db) / 1e9, time.time() - start))
        runner = sharded._runner(binary, db, None, args.cpus)
        base, base_cpu, expected = timed(lambda: compat.jackhmmer_sto(runner, query, args.max_sequences), args.repeat)
        print('jackhmmer, hbb_human, --cpus %d, best of %d' % (args.cpus, args.repeat))
        print('  %-10s %8.1f s wall %8.1f s CPU' % ('unsharded', base, base_cpu))
        for n in args.shards:
            shards = split(db, count, n, work)
            wall, cpu, got = timed(lambda: sharded.search(binary, query, shards, args.cpus, args.max_sequences,
                                                          os.path.join(work, 'hits-%d' % n)), args.repeat)
            print('  %-10s %8.1f s wall %8.1f s CPU   unsharded / sharded %5.2fx   %s   (%s)' % (
                '%d shards' % n, wall, cpu, base / wall, 'same result' if got == expected else 'DIFFERENT RESULT',
                sharded.describe(shards, args.cpus)))
            if n == max(args.shards):
                times, second = per_shard(binary, query, shards, args.cpus, args.max_sequences,
                                          os.path.join(work, 'alone-%d' % n))
            for p in shards.paths:
                os.unlink(p)
        mean = sum(times) / len(times)
        print('%d shards alone, 1 thread: slowest %.1f s, mean %.1f s, sum %.1f s; second pass (%d threads) %.1f s'
              % (len(times), max(times), mean, sum(times), args.cpus, second))
        for cores in PROJECTED_CORES:
            projected = max(times) / mean * sum(times) / cores + second
            print('  projected at %2d cores (%2d shards, 1 thread each): %6.1f s wall, %5.1fx the unsharded run above'
                  % (cores, cores, projected, base / projected))


if __name__ == '__main__':
    main()
