#!/usr/bin/env python3
"""Node-local staging benchmark: `alphafold-data stage` against `cp -a` of the same tree, and a
re-stage of unchanged data as a fraction of the first stage (target: at most 5%).

Generates a published version of SIZE_GB in many files (like the HH-suite and mmCIF trees),
then, in one run: cp -a, first stage, unchanged re-stage. Page caches are dropped before each
copy when the kernel allows it (root).

  .venv/bin/python benchmarks/staging.py --size-gb 3 --files 3000
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def drop_caches():
    try:
        subprocess.run(['sync'], check=True)
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('3\n')
        return True
    except OSError:
        return False


def timed(cmd):
    dropped = drop_caches()
    start = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.time() - start, dropped


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--size-gb', type=float, default=2.0)
    ap.add_argument('--files', type=int, default=2000)
    ap.add_argument('--workdir', help='where to build the trees (default: a temporary directory)')
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix='staging-bench-', dir=args.workdir)
    try:
        tree = os.path.join(work, 'tree')
        per_file = int(args.size_gb * 1e9 / args.files)
        for i in range(args.files):
            d = os.path.join(tree, 'db%d' % (i % 8), 'part%02d' % (i % 50))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, 'f%05d.bin' % i), 'wb') as f:
                f.write(os.urandom(per_file))
        # Published trees must be complete sets; a stand-in pdb_seqres makes this one a set.
        os.makedirs(os.path.join(tree, 'pdb_seqres'))
        with open(os.path.join(tree, 'pdb_seqres', 'pdb_seqres.txt'), 'w') as f:
            f.write('>101m_A mol:protein length:154  MYOGLOBIN\n')
        shared, local = os.path.join(work, 'shared'), os.path.join(work, 'local')
        data = [sys.executable, '-m', 'data_sync']
        subprocess.run(data + ['publish', '--data-root', shared, '--from', tree, '--databases', 'pdb_seqres'],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=dict(os.environ, ALPHAFOLD_SITE_CONFIG=''))
        source = os.path.realpath(os.path.join(shared, 'current'))
        cp, dropped = timed(['cp', '-a', source, os.path.join(work, 'cp-copy')])
        stage = data + ['stage', '--data-root', shared, '--local-root', local]
        first, _ = timed(stage)
        again, _ = timed(stage)
        print('staging %.1f GB in %d files%s' % (args.size_gb, args.files, '' if dropped else ' (page cache not dropped: not root)'))
        print('  cp -a                      %7.2f s' % cp)
        print('  alphafold-data stage       %7.2f s   (rsync, then size checks + SHA-256 of copied files)' % first)
        print('  re-stage, unchanged        %7.2f s' % again)
        print('ratios:')
        print('  first stage / cp -a        %7.2fx' % (first / cp))
        print('  re-stage / first stage     %7.1f%%  (target <= 5%%)' % (100 * again / first))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
