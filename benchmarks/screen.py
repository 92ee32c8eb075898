#!/usr/bin/env python3
"""Pull-down screen, CPU side: the kit's chain searches vs one AlphaFold run per pair.

2 baits x 3 candidates (real domains of the test databases: the PIM1 kinase and the HPV E2
DNA-binding domain as baits; the EphA2 fn3 domain, conotoxin PIIIE and HBB_HUMAN as candidates),
the same 6 complexes both ways, in the same run:
  * stock: AlphaFold's pipeline_multimer.DataPipeline once per complex, serially (run_alphafold.py
    --model_preset=multimer per pair, tests/stock_alphafold.py, DeepMind's data semantics): every
    run searches both of its chains;
  * kit: the complexes that `alphafold-batch screen --mode pulldown` makes, through the kit's
    multimer CPU stage (alphafold-msa --model-preset multimer) with one chain cache, as the
    batch's CPU tasks run them: each unique chain is searched once.
Counts searches (stock: the hit files its runs write; kit: the searches in timings.json), CPU
seconds (user + system of the process and every tool it ran) and wall seconds, and prints the
ratios; expected searches ratio 2*n*m/(n+m) = 2.4 for n=2, m=3.

  .venv/bin/python benchmarks/screen.py [--db-preset full_dbs|reduced_dbs]
"""
import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from fold_runtime.batch import screen  # noqa: E402

HIT_FILES = ('*_hits.sto', '*_hits.a3m')   # one file per search (pdb_hits.sto: the template search)
STOCK = '''import os, sys
sys.path.insert(0, os.path.join(%r, 'tests'))
import stock_alphafold
data_dir, preset, out = sys.argv[1:4]
for fasta in sys.argv[4:]:
    name = os.path.splitext(os.path.basename(fasta))[0]
    stock_alphafold.stock_multimer_features(data_dir, preset, fasta, os.path.join(out, name, 'msas'))
''' % ROOT


def test_data():
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'build_test_dbs.py')], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    return out.strip().splitlines()[-1]


def lists(data_dir, work):
    """baits.fa and candidates.fa from the test targets' real sequences."""
    def records(name):
        with open(os.path.join(data_dir, 'targets', name + '.fasta')) as f:
            return f.read()
    pim1_epha2 = records('pim1_epha2').split('>')[1:]
    baits = os.path.join(work, 'baits.fa')
    candidates = os.path.join(work, 'candidates.fa')
    with open(baits, 'w') as f:
        f.write('>' + pim1_epha2[0] + records('e2_dbd'))
    with open(candidates, 'w') as f:
        f.write('>' + pim1_epha2[1] + records('conotoxin') + records('hbb_human'))
    return baits, candidates


def measured(cmd):
    """(wall s, CPU s of the command and its tools) of one subprocess."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.time() - started, cpu


def stock_searches(out):
    return sum(len(glob.glob(os.path.join(out, '*', 'msas', '*', pattern))) for pattern in HIT_FILES)


def kit_searches(out, names):
    total = 0
    for name in names:
        with open(os.path.join(out, name, 'timings.json')) as f:
            total += sum(1 for k in json.load(f) if k.startswith('search_'))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--db-preset', default='full_dbs', choices=('reduced_dbs', 'full_dbs'),
                    help='default: %(default)s (with reduced_dbs the tiny test searches cost less than starting Python)')
    args = ap.parse_args()
    data_dir = test_data()
    work = tempfile.mkdtemp(prefix='screen-bench-')
    baits, candidates = lists(data_dir, work)
    complexes = screen.targets('pulldown', [baits], [candidates], None, os.path.join(work, 'kit'))
    screen.write(complexes)
    fastas = [t.fasta_path for t in complexes]
    chains = {c.sequence for t in complexes for c in t.chains}
    print('%d complexes (%s), %d unique chains, %s, 1 process each way' % (
        len(complexes), ', '.join(t.name for t in complexes), len(chains), args.db_preset))

    stock_out = os.path.join(work, 'stock')
    stock_wall, stock_cpu = measured([sys.executable, '-c', STOCK, data_dir, args.db_preset, stock_out] + fastas)
    kit_out = os.path.join(work, 'kit')
    kit_wall, kit_cpu = measured([sys.executable, '-m', 'fold_runtime', 'msa', '--model-preset', 'multimer',
                                  '--fasta'] + fastas + ['--output-dir', kit_out, '--data-dir', data_dir,
                                                         '--db-preset', args.db_preset, '--cpus', '2',
                                                         '--feature-cache', os.path.join(work, 'cache')])
    searches = (stock_searches(stock_out), kit_searches(kit_out, [t.name for t in complexes]))
    print('%-8s %9s %10s %8s' % ('', 'searches', 'CPU s', 'wall s'))
    print('%-8s %9d %10.1f %8.1f' % ('stock', searches[0], stock_cpu, stock_wall))
    print('%-8s %9d %10.1f %8.1f' % ('kit', searches[1], kit_cpu, kit_wall))
    print('ratio stock/kit: searches %.2fx, CPU seconds %.2fx, wall %.2fx' % (
        searches[0] / searches[1], stock_cpu / kit_cpu, stock_wall / kit_wall))


if __name__ == '__main__':
    main()
