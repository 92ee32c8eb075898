"""benchmarks/batch_throughput.py's figures for the worker with relax inline and in the pool, from
worker records as the batch writes them (.batch/timings/worker-*.json; written here, no model runs),
and its --ways option."""
import importlib.util
import os
import subprocess
import sys

from conftest import ROOT

SCRIPT = os.path.join(ROOT, 'benchmarks', 'batch_throughput.py')
_spec = importlib.util.spec_from_file_location('batch_throughput', SCRIPT)
batch_throughput = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(batch_throughput)


def record(wall_s, busy_s, relax_s, targets):
    return {'wall_s': wall_s, 'busy_s': busy_s, 'relax_s': relax_s, 'compiles': 19,
            'targets': {'t%d' % i: {} for i in range(targets)}}


def test_accelerator_busy_counts_predictions_only_and_the_pool_is_compared_with_inline():
    inline = batch_throughput.worker_figures([record(400.0, 200.0, 100.0, 8)], 450.0)
    pool = batch_throughput.worker_figures([record(300.0, 210.0, 120.0, 6), record(100.0, 50.0, 10.0, 2)], 360.0)
    assert inline['busy'] == 0.5 and inline['targets_per_hour'] == 64.0      # relax time is not busy time
    assert (pool['targets'], pool['predict_s'], pool['relax_s'], pool['busy']) == (8, 260.0, 130.0, 0.65)
    table = batch_throughput.relax_table(inline, pool).splitlines()
    assert table[1].split()[-6:] == ['8', '450.0', '64.0', '200.0', '100.0', '50%']
    assert table[2].split()[-6:] == ['8', '360.0', '80.0', '260.0', '130.0', '65%']
    assert table[3] == '  pool / inline: throughput 1.25x, accelerator busy 1.30x'


def test_ways_and_targets_are_checked_before_any_work():
    assert batch_throughput.parse_ways('worker') == ['worker']
    res = subprocess.run([sys.executable, SCRIPT, '--ways', 'worker,gpu'], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 2 and 'unknown way gpu: choose from stock,array,worker' in res.stdout
    res = subprocess.run([sys.executable, SCRIPT, '--targets', '9'], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 2 and 'argument --targets: invalid choice: 9' in res.stdout
