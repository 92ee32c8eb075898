#!/usr/bin/env python3
"""GPU check: one command, one table of what the GPU stage does on this node, every line measured.

Runs within --budget seconds (default 480, the 8 minutes `make gpu-check` may take on a GPU node,
building the cached inputs included) with STAND-IN full-size weights (random arrays of the real
model_1_ptm's shapes: tests/make_test_weights.py --full-size), the real-data test databases
(tests/build_test_dbs.py) and features made without searches (alphafold-msa --msa with a
one-sequence A3M, --no-templates). Rows, in the order they run:
  * check-install --gpu: `python -m fold_runtime.stack_check --gpu` (jax sees the GPU, OpenMM's CUDA
    platform loads), its lines as they are, and ptxas (on PATH or in the nvidia-cuda-nvcc-cu12 wheel);
  * the card (nvidia-smi -L and --query-gpu=name,memory.total);
  * predict time, compile and run apart (timings.json's compile_<model> and predict_<model>) at
    100, 300, 500 and 1000 residues: one alphafold-predict process, model_1_ptm, 3 recycles;
  * the persistent compile cache: a second process's compile time for a length the first compiled;
  * relax of one model (the shortest) on OpenMM's CPU platform and on its CUDA platform;
  * the GPU worker: alphafold-batch (local executor) on 20 targets of 50-300 residues (one-sequence
    A3Ms, --no-templates, buckets at the lengths above), targets per hour and accelerator busy;
  * memory modes: the longest length that fits with --memory-mode default and with unified, by
    doubling from the longest known fit, then bisection, with what time is left (half each). Each
    probe is a fresh alphafold-predict with 0 recycles (the recycles run in one loop: the peak
    memory is one pass's); an out-of-memory failure means it does not fit. The row says what was
    reached when the budget ran out.
Each step checks the time left; a step the budget cannot start says so. Without a GPU (nvidia-smi
lists none and jax sees none) it prints the CPU-side rows and a "no GPU: ... not measured" line and
exits 0 at once, so CI runs it.

  make gpu-check                                   # .venv's python; GPU_CHECK_ARGS for options
  benchmarks/gpu_check.py --python /opt/alphafold/.../envs/<build>/bin/python --budget 900
"""
import argparse
import collections
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from fold_runtime.target_layout import FEATURES, FEATURES_META  # noqa: E402
MODEL = 'model_1_ptm'
GPU_ROWS = ('predict time', 'memory modes', 'compile cache', 'GPU worker', 'relax CPU vs CUDA')
# Stack-check lines that need a GPU: without one they fail, and that is no failure of the check.
GPU_SIDE = ('jax starts and sees a GPU', 'OpenMM starts with its CUDA platform', 'ptxas')
# The XLA settings the memory modes make; a value exported here would override them in every row.
XLA_VARIABLES = ('TF_FORCE_UNIFIED_MEMORY', 'XLA_PYTHON_CLIENT_MEM_FRACTION', 'XLA_PYTHON_CLIENT_ALLOCATOR',
                 'XLA_PYTHON_CLIENT_PREALLOCATE')
OOM_TEXT = ('ran out of memory', 'RESOURCE_EXHAUSTED', 'Out of memory', 'out of memory')
RESERVE_S = 10.0      # kept back from every step: stopping a process and printing the table
PTXAS = r'''
import importlib.util, os, shutil, subprocess
found = [('PATH', shutil.which('ptxas'))]
try:
    spec = importlib.util.find_spec('nvidia.cuda_nvcc')
except (ImportError, ValueError):
    spec = None
for d in (spec.submodule_search_locations if spec else None) or []:
    p = os.path.join(d, 'bin', 'ptxas')
    found.append(('nvidia-cuda-nvcc-cu12 wheel', p if os.access(p, os.X_OK) else None))
for where, path in found:
    if path:
        try:
            out = subprocess.run([path, '--version'], stdout=subprocess.PIPE, universal_newlines=True).stdout
            lines = [l.strip() for l in out.splitlines() if l.strip()]
            release = ([l for l in lines if 'release' in l] or lines)[-1]
        except (OSError, IndexError) as exc:
            release = 'does not run: %s' % exc
        print('%s\t%s\t%s' % (where, path, release))
'''

Row = collections.namedtuple('Row', 'check setting result unit detail')
HEADER = Row('check', 'setting', 'result', 'unit', 'detail')


def render_table(rows):
    """The table: a header, then one line per row, columns aligned (the last one unpadded)."""
    lines = [HEADER] + [Row(*(str(c) for c in r)) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER) - 1)]
    return ''.join(('  '.join(c.ljust(w) for c, w in zip(line, widths)) + '  ' + line[-1]).rstrip() + '\n'
                   for line in lines)


def seconds(value):
    return '%.1f' % value if value >= 10 else '%.2f' % value


def no_gpu_line():
    return 'no GPU: %s not measured' % ', '.join(GPU_ROWS)


class Budget(object):
    def __init__(self, total):
        self.total, self.start = total, time.time()

    def used(self):
        return time.time() - self.start

    def left(self):
        return self.total - self.used() - RESERVE_S


Result = collections.namedtuple('Result', 'rc out seconds stopped')


def run(cmd, timeout, env=None, log=None):
    """Run cmd (in its own session) for at most timeout seconds; stopped: it was still running
    then (SIGTERM to its process group, SIGKILL 5 s later)."""
    t0 = time.time()
    if timeout <= 0:
        return Result(None, '', 0.0, True)
    try:
        proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True, start_new_session=True)
    except OSError as exc:
        return Result(None, '%s: %s' % (cmd[0], exc), 0.0, False)
    stopped = False
    try:
        out = proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        stopped = True
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out = proc.communicate(timeout=5)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out = proc.communicate()[0]
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    if log:
        with open(log, 'w') as f:
            f.write(out)
    return Result(proc.returncode, out, time.time() - t0, stopped)


def error_of(res):
    """One line saying why a command failed: the kit's 'error:' line, else its last line."""
    if res.stopped:
        return 'stopped at the budget after %.0f s' % res.seconds
    lines = [l.strip() for l in res.out.splitlines() if l.strip()]
    errors = [l for l in lines if ': error: ' in l or l.startswith(('Error', 'RuntimeError', 'FAIL'))]
    text = (errors or lines or ['exit status %s' % res.rc])[-1]
    return (text[:160] + '...') if len(text) > 160 else text


def out_of_memory(res):
    """An out-of-memory failure: XLA's (exit 7, RESOURCE_EXHAUSTED) or the kernel's OOM killer."""
    if res.rc == 0 or res.stopped:
        return False
    return any(t in res.out for t in OOM_TEXT) or res.rc in (-9, 137)


# ---- the device listing and the CPU-side checks ---------------------------------------------------

def nvidia_smi(program):
    """(GPU lines of `nvidia-smi -L`, [(name, MiB)] of the query, why there are none)."""
    try:
        res = subprocess.run([program, '-L'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], [], '%s: %s' % (program, exc)
    gpus = [l.strip() for l in res.stdout.splitlines() if l.startswith('GPU ')]
    if not gpus:
        return [], [], (res.stdout.strip().splitlines() or ['exit status %d, no listing' % res.returncode])[0]
    cards = []
    res = subprocess.run([program, '--query-gpu=name,memory.total', '--format=csv,noheader'], timeout=60,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    for line in res.stdout.splitlines():
        name, _, memory = line.rpartition(',')
        if name and memory.strip().endswith('MiB') and memory.split()[0].isdigit():
            cards.append((name.strip(), int(memory.split()[0])))
    return gpus, cards, '' if cards else 'query gave no memory: %s' % res.stdout.strip()[:100]


def stack_rows(python, budget):
    """check-install --gpu: the stack check's lines as rows, and ptxas. Returns (rows, jax sees a GPU)."""
    res = run([python, '-m', 'fold_runtime.stack_check', '--gpu'], min(300, budget.left()))
    rows = []
    for line in res.out.splitlines():
        if line.startswith(('OK ', 'FAIL ')):
            status, text = line.split(None, 1)
            label, _, detail = text.partition(': ')
            rows.append(Row('check-install --gpu', label, status, '', detail))
    if not rows:
        rows.append(Row('check-install --gpu', 'python -m fold_runtime.stack_check --gpu', 'FAIL', '', error_of(res)))
    sees_gpu = any(r.setting == 'jax starts and sees a GPU' and r.result == 'OK' for r in rows)
    found = run([python, '-c', PTXAS], 60).out.strip().splitlines()
    found = [l.split('\t') for l in found if l.count('\t') == 2]
    if found:
        where, path, release = found[0]
        rows.append(Row('check-install --gpu', 'ptxas', 'OK', '', '%s (%s): %s' % (path, where, release)))
    else:
        rows.append(Row('check-install --gpu', 'ptxas', 'FAIL', '',
                        'not on PATH, nor in the nvidia-cuda-nvcc-cu12 wheel of %s' % python))
    return rows, sees_gpu


def failed(rows, gpu):
    """Rows that count as failures: without a GPU, the GPU-side checks do not."""
    return [r for r in rows if r.result in ('FAIL', 'error') and (gpu or r.setting not in GPU_SIDE)]


# ---- the GPU rows ---------------------------------------------------------------------------------

class Check(object):
    """The GPU rows, in a work directory: inputs, then each step within the budget."""

    def __init__(self, args, budget, work):
        self.args, self.budget, self.work = args, budget, work
        self.cache_dir = os.path.join(work, 'jax-cache')   # one persistent compilation cache for all rows
        self.lengths = sorted(args.lengths)
        self.predicted = {}     # length -> target dir the predict row predicted (3 recycles)
        self.fits = {}          # length -> 'fits' or 'oom', default memory mode (the predict row's too)
        env = {k: v for k, v in os.environ.items() if k not in XLA_VARIABLES}
        visible = os.environ.get('CUDA_VISIBLE_DEVICES', '').split(',')[0].strip()
        env['CUDA_VISIBLE_DEVICES'] = visible or '0'   # one GPU: the worker row is one worker
        env['ALPHAFOLD_JAX_CACHE_DIR'] = self.cache_dir
        self.env = env

    def say(self, text):
        print('gpu-check [%4.0f s] %s' % (self.budget.used(), text), file=sys.stderr, flush=True)

    def kit(self, name, *args, **kw):
        log = os.path.join(self.work, 'logs', name + '.log')
        return run([self.args.python, '-m', 'fold_runtime'] + list(args), kw.get('timeout', self.budget.left()),
                   env=kw.get('env', self.env), log=log)

    def gpu_args(self, recycles=3, relax='none', mode='default'):
        return ['--data-dir', self.data_dir, '--model-preset', 'monomer_ptm', '--models', 'model_1',
                '--num-recycle', recycles, '--models-to-relax', relax, '--memory-mode', mode, '--require-gpu',
                '--no-result-pkl', '--no-plots']

    # inputs

    def prepare(self):
        """The cached test databases and full-size STAND-IN weights (built at once, in parallel),
        and a data directory of both."""
        self.say('test databases and full-size stand-in weights (cached under %s)' % self.args.cache)
        builds = {}
        for name, script, extra in (('databases', 'build_test_dbs.py', []),
                                    ('weights', 'make_test_weights.py', ['--full-size', '--models', MODEL])):
            log = open(os.path.join(self.work, 'logs', name + '.log'), 'w')
            builds[name] = (subprocess.Popen([sys.executable, os.path.join(ROOT, 'tests', script), '--cache',
                                              self.args.cache] + extra, cwd=ROOT, stdout=subprocess.PIPE,
                                             stderr=log, universal_newlines=True, start_new_session=True), log)
        paths = {}
        try:
            for name, (proc, log) in builds.items():
                try:
                    out = proc.communicate(timeout=max(1.0, self.budget.left()))[0]
                except subprocess.TimeoutExpired:
                    raise RuntimeError('building the %s did not finish within the budget' % name)
                if proc.returncode != 0 or not out.strip():
                    raise RuntimeError('building the %s failed (exit %s): see %s' % (name, proc.returncode, log.name))
                paths[name] = out.strip().splitlines()[-1]
        finally:
            for proc, log in builds.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                log.close()
        self.db_dir = paths['databases']
        self.data_dir = os.path.join(self.work, 'data')   # as tests/conftest.py's with_params
        os.makedirs(self.data_dir)
        for name in os.listdir(self.db_dir):
            os.symlink(os.path.join(self.db_dir, name), os.path.join(self.data_dir, name))
        os.symlink(os.path.join(paths['weights'], 'params'), os.path.join(self.data_dir, 'params'))
        with open(os.path.join(self.db_dir, 'targets', 'hbb_human.fasta')) as f:
            self.protein = ''.join(l.strip() for l in f if not l.startswith('>'))
        self.inputs = os.path.join(self.work, 'inputs')
        os.makedirs(self.inputs)

    def sequence(self, length):
        """A real protein (HBB_HUMAN) repeated to length residues: distinct lengths, distinct sequences."""
        return (self.protein * (length // len(self.protein) + 1))[:length]

    def write_input(self, name, length, directory):
        """directory/name.a3m: a one-sequence A3M (the query only). Returns the FASTA record."""
        record = '>%s\n%s\n' % (name, self.sequence(length))
        with open(os.path.join(directory, name + '.a3m'), 'w') as f:
            f.write(record)
        return record

    def features(self, lengths):
        """features.pkl of a len<L> target per length, by alphafold-msa --msa --no-templates (one process)."""
        out = os.path.join(self.work, 'targets')
        todo = [n for n in lengths if not os.path.exists(os.path.join(out, 'len%d' % n, FEATURES))]
        if todo:
            fastas, msas = [], []
            for n in todo:   # one FASTA file per target: the target is named after it
                fastas.append(os.path.join(self.inputs, 'len%d.fasta' % n))
                msas.append(os.path.join(self.inputs, 'len%d.a3m' % n))
                with open(fastas[-1], 'w') as f:
                    f.write(self.write_input('len%d' % n, n, self.inputs))
            res = self.kit('msa-%s' % '-'.join(map(str, todo)), 'msa', *(
                ['--fasta'] + fastas + ['--msa'] + msas + ['--no-templates', '--db-preset', 'reduced_dbs',
                                                           '--output-dir', out, '--data-dir', self.data_dir,
                                                           '--cpus', min(os.cpu_count() or 1, 16)]))
            if res.rc != 0:
                raise RuntimeError('alphafold-msa --msa --no-templates failed: %s' % error_of(res))
        return {n: os.path.join(out, 'len%d' % n) for n in lengths}

    def fresh(self, src, step):
        """A copy of a target's CPU-stage output only (features and their meta): nothing to keep."""
        dst = os.path.join(self.work, step, os.path.basename(src))
        os.makedirs(dst)
        for name in (FEATURES, FEATURES_META):
            shutil.copy(os.path.join(src, name), dst)
        return dst

    @staticmethod
    def timings(tdir):
        try:
            with open(os.path.join(tdir, 'timings.json')) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    # steps

    def predict_rows(self):
        targets = self.features(self.lengths)
        dirs = [self.fresh(targets[n], 'predict') for n in self.lengths]
        self.say('predict %s residues, %s, 3 recycles (one process)' % (', '.join(map(str, self.lengths)), MODEL))
        res = self.kit('predict', 'predict', *(['--target-dir'] + dirs + self.gpu_args()))
        rows, first_failure = [], True
        for n, tdir in zip(self.lengths, dirs):
            t = self.timings(tdir)
            if 'predict_' + MODEL in t:
                self.predicted[n], self.fits[n] = tdir, 'fits'
                rows.append(Row('predict %d res' % n, 'compile (%s, 3 recycles)' % MODEL,
                                seconds(t['compile_' + MODEL]), 's', '%d XLA compiles' % t.get('compiles_' + MODEL, 0)))
                rows.append(Row('predict %d res' % n, 'run (%s, 3 recycles)' % MODEL,
                                seconds(t['predict_' + MODEL]), 's', 'memory mode default'))
            else:
                if first_failure and out_of_memory(res):
                    self.fits[n] = 'oom'
                rows.append(Row('predict %d res' % n, 'compile and run', 'error', '', error_of(res) if first_failure
                                else 'not reached: the process ended before this length'))
                first_failure = False
        return rows

    def cache_rows(self):
        if not self.predicted:
            return [Row('compile cache', 'second process', 'not measured', '', 'no length was predicted')]
        n = min(self.predicted)
        first = self.timings(self.predicted[n])
        tdir = self.fresh(self.predicted[n], 'cache')
        self.say('compile cache: a second process predicts %d residues' % n)
        res = self.kit('cache', 'predict', *(['--target-dir', tdir] + self.gpu_args()))
        t = self.timings(tdir)
        if res.rc != 0 or 'compile_' + MODEL not in t:
            return [Row('compile cache', 'second process, %d res' % n, 'error', '', error_of(res))]
        return [Row('compile cache', 'second process, %d res (seen)' % n, seconds(t['compile_' + MODEL]), 's',
                    'first process compiled it in %s s (%d XLA compiles, %d now); compile + run %s s then, %s s now'
                    % (seconds(first['compile_' + MODEL]), first.get('compiles_' + MODEL, 0),
                       t.get('compiles_' + MODEL, 0), seconds(first['predict_and_compile_' + MODEL]),
                       seconds(t['predict_and_compile_' + MODEL])))]

    def relax_rows(self):
        if not self.predicted:
            return [Row('relax', 'CPU and CUDA', 'not measured', '', 'no length was predicted')]
        n = min(self.predicted)
        rows = []
        for platform, flag in (('CPU', '--no-gpu-relax'), ('CUDA', '--use-gpu-relax')):
            left = self.budget.left()
            if left < 20:
                rows.append(Row('relax %d res' % n, 'OpenMM %s' % platform, 'not measured', '',
                                'budget spent (%.0f s left)' % max(0, left)))
                continue
            # The predicted model is kept (same features and options): only the relaxation runs.
            tdir = os.path.join(self.work, 'relax-' + platform, os.path.basename(self.predicted[n]))
            shutil.copytree(self.predicted[n], tdir)
            self.say('relax the %d-residue model on OpenMM %s' % (n, platform))
            res = self.kit('relax-' + platform, 'predict', *(['--target-dir', tdir, flag] + self.gpu_args(relax='best')))
            t = self.timings(tdir)
            if res.rc == 0 and 'relax_' + MODEL in t:
                rows.append(Row('relax %d res' % n, 'OpenMM %s (%s)' % (platform, flag), seconds(t['relax_' + MODEL]),
                                's', 'one model, AlphaFold\'s AmberRelaxation settings'))
            else:
                rows.append(Row('relax %d res' % n, 'OpenMM %s (%s)' % (platform, flag), 'error', '', error_of(res)))
        return rows

    def worker_rows(self):
        count = self.args.worker_targets
        lengths = [50 + int(round(i * 250.0 / max(1, count - 1))) for i in range(count)]
        names = ['w%02d_%d' % (i, n) for i, n in enumerate(lengths)]
        msa_dir = os.path.join(self.work, 'worker-msa')   # <target>.a3m, as alphafold-batch --msa DIR reads
        os.makedirs(msa_dir)
        fasta = os.path.join(self.work, 'worker.fasta')
        with open(fasta, 'w') as f:
            f.write(''.join(self.write_input(name, n, msa_dir) for name, n in zip(names, lengths)))
        out = os.path.join(self.work, 'worker')
        setting = '%d targets, %d-%d res' % (count, min(lengths), max(lengths))
        self.say('GPU worker: alphafold-batch on %s' % setting)
        buckets = ','.join(str(n) for n in self.lengths)
        res = self.kit('worker', 'batch', 'submit', *([
            '--fasta', fasta, '--msa', msa_dir, '--no-templates', '--db-preset', 'reduced_dbs', '--output-dir', out,
            '--executor', 'local', '--no-progress', '--cpus', min(os.cpu_count() or 1, 16), '--cpus-per-task', 1,
            '--buckets', buckets] + self.gpu_args()))
        records = []
        timings_dir = os.path.join(out, '.batch', 'timings')
        for name in sorted(os.listdir(timings_dir)) if os.path.isdir(timings_dir) else ():
            with open(os.path.join(timings_dir, name)) as f:
                records.append(json.load(f))
        report = self.kit('worker-report', 'batch', 'report', out, timeout=max(1.0, min(60, self.budget.left() + 5)))
        try:
            summary = json.loads(report.out[report.out.index('{'):report.out.rindex('}') + 1])
        except ValueError:
            summary = {}
        done = sum(1 for r in records for t in r.get('targets', {}).values() if not t.get('error'))
        wall = sum(r.get('wall_s', 0) for r in records)
        if not done or not wall:
            return [Row('GPU worker', setting, 'error', '', error_of(res) if res.rc != 0 else 'no target predicted')]
        note = ('%s%d of %d done, worker %.0f s from its start (weights loaded once), %d XLA compiles (%s s); '
                'buckets %s, relax none, shared compile cache' % (
                    'stopped at the budget: ' if res.stopped else '', done, count, wall, summary.get('compiles', 0),
                                                                   summary.get('compile_s', '?'), buckets))
        busy = summary.get('gpu_busy_fraction')
        rows = [Row('GPU worker', setting, '%.0f' % (done * 3600.0 / wall), 'targets/h', note)]
        if busy is None:
            rows.append(Row('GPU worker', 'accelerator busy', 'FAIL', '', 'the worker had no GPU (report.json)'))
        else:
            rows.append(Row('GPU worker', 'accelerator busy', '%.0f' % (100 * busy), '%',
                            'report.json: prediction over the worker\'s wall time; batch %s targets/h over %s s'
                            % (summary.get('proteins_per_hour'), summary.get('wall_s'))))
        return rows

    def probe(self, mode, length, timeout):
        """One fresh alphafold-predict at length in mode, 0 recycles: fits, oom, stopped or error."""
        tdir = self.fresh(self.features([length])[length], 'memory-%s-%d' % (mode, length))
        self.say('memory %s: probe %d residues (%.0f s left)' % (mode, length, timeout))
        res = self.kit('memory-%s-%d' % (mode, length), 'predict',
                       *(['--target-dir', tdir] + self.gpu_args(recycles=0, mode=mode)), timeout=timeout)
        for line in res.out.splitlines():   # the kit's log: "memory mode M (...); set VAR=VALUE; ..."
            if line.startswith('memory mode ') and '; set ' in line:
                self.mode_settings[mode] = ', '.join(p.strip()[len('set '):] for p in line.split(';')[1:]
                                                     if p.strip().startswith('set '))
        if res.rc == 0:
            return 'fits', res.seconds, ''
        if out_of_memory(res):
            return 'oom', res.seconds, error_of(res)
        return ('stopped' if res.stopped else 'error'), res.seconds, error_of(res)

    def memory_rows(self):
        self.mode_settings = {}
        rows, unified = [], {}
        for mode, outcomes in (('default', self.fits), ('unified', unified)):
            left = self.budget.left()
            share = left / 2.0 if mode == 'default' else left
            until = time.time() + share
            if mode == 'unified':   # start where default stopped fitting, else at its longest fit
                start = min([n for n, o in self.fits.items() if o == 'oom'] or
                            [max([n for n, o in self.fits.items() if o == 'fits'] or [max(self.lengths)])])
            else:
                start = max(self.lengths)
            seeded = sorted(n for n, o in outcomes.items() if o == 'fits')
            fit, oom, log, why = longest_fit(lambda n, t, m=mode: self.probe(m, n, t), outcomes,
                                             lambda: min(until - time.time(), self.budget.left()), start,
                                             self.args.max_length)
            detail = '; '.join(filter(None, [
                'the kit set %s' % self.mode_settings[mode] if mode in self.mode_settings else '',
                '%d fits (predict row, 3 recycles)' % seeded[-1] if seeded else '',
                'out of memory at %d' % oom if oom else '',
                'probes (0 recycles): %s' % ', '.join(log) if log else '',
                'stopped: %s' % why]))
            rows.append(Row('memory %s' % mode, '--memory-mode %s, longest that fits' % mode,
                            str(fit) if fit else ('none' if oom else 'not measured'), 'res' if fit else '', detail))
        return rows


def longest_fit(probe, outcomes, left, start, max_length, resolution=100, step=50, min_probe_s=30):
    """The longest length that fits: doubling from the longest known fit until one does not, then
    bisection between the longest fit and the shortest failure, to within `resolution` residues.
    outcomes: {length: 'fits' | 'oom'} measured already (probes add theirs); probe(length, timeout)
    -> (outcome, seconds, text) where outcome is fits, oom, stopped (at the budget) or error;
    left(): seconds left for probing. Returns (longest fit, shortest failure above it, the probes
    as text, why it stopped)."""
    log = []
    while True:
        fits = [n for n, o in outcomes.items() if o == 'fits']
        fit = max(fits) if fits else None
        ooms = [n for n, o in outcomes.items() if o == 'oom' and (fit is None or n > fit)]
        oom = min(ooms) if ooms else None
        if oom is None:
            if fit is None:
                length = start
            elif fit >= max_length:
                why = 'fits at --max-length %d' % max_length
                break
            else:
                length = min(2 * fit, max_length)
        else:
            low = fit or 0
            if oom - low <= resolution:
                why = 'resolved to within %d residues' % resolution
                break
            length = low + max(step, (oom - low) // 2 // step * step)
        time_left = left()
        if time_left < min_probe_s:
            why = 'budget spent (next probe %d residues)' % length
            break
        outcome, took, text = probe(length, time_left)
        log.append('%d %s %.0f s' % (length, {'fits': 'fits', 'oom': 'out of memory'}.get(outcome, outcome), took))
        if outcome not in ('fits', 'oom'):
            why = ('budget spent during the probe at %d residues' % length if outcome == 'stopped'
                   else 'probe at %d residues failed: %s' % (length, text))
            break
        outcomes[length] = outcome
    known = [n for n, o in outcomes.items() if o == 'fits']
    fit = max(known) if known else None
    ooms = [n for n, o in outcomes.items() if o == 'oom' and (fit is None or n > fit)]
    return fit, (min(ooms) if ooms else None), log, why


def gpu_rows(args, budget):
    work = tempfile.mkdtemp(prefix='gpu-check-', dir=args.work_dir)
    os.makedirs(os.path.join(work, 'logs'))
    check = Check(args, budget, work)
    rows = []
    steps = [('predict time', check.predict_rows), ('compile cache', check.cache_rows),
             ('relax CPU vs CUDA', check.relax_rows), ('GPU worker', check.worker_rows),
             ('memory modes', check.memory_rows)]
    try:
        try:
            check.prepare()
        except Exception as exc:   # every GPU row then says why it was not measured
            return [Row(name, '', 'not measured', '', 'inputs: %s' % exc) for name, _ in steps]
        for name, step in steps:
            left = budget.left()
            if left < 30:
                rows.append(Row(name, '', 'not measured', '', 'budget spent (%.0f s of %.0f used)'
                                % (budget.used(), budget.total)))
                continue
            try:
                rows.extend(step())
            except Exception as exc:   # a broken step must not cost the others their rows
                rows.append(Row(name, '', 'error', '', '%s: %s' % (type(exc).__name__, exc)))
        return rows
    finally:
        if args.keep:
            print('gpu-check: work directory (logs/, outputs) kept: %s' % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--budget', type=float, default=480, metavar='SECONDS',
                    help='the whole run, inputs included, keeps within this (default: %(default)s)')
    ap.add_argument('--python', default=sys.executable,
                    help='the Python of the stack to check, whose jax must see the GPU (default: this one); '
                         'e.g. a cuda12-pip venv install\'s bin/python')
    ap.add_argument('--nvidia-smi', default='nvidia-smi', metavar='PATH',
                    help='the program that lists the GPUs (-L) and their memory (default: %(default)s)')
    ap.add_argument('--cache', default=os.environ.get('TESTDATA_CACHE', os.path.expanduser('~/.cache/alphafold-hpc-kit')),
                    help='where tests/build_test_dbs.py and make_test_weights.py cache their output '
                         '(default: $TESTDATA_CACHE, else %(default)s)')
    ap.add_argument('--lengths', type=lambda s: [int(x) for x in s.split(',')], default=[100, 300, 500, 1000],
                    help='predict-time lengths, comma-separated (default: 100,300,500,1000)')
    ap.add_argument('--worker-targets', type=int, default=20, help='targets of the GPU worker row (default: 20)')
    ap.add_argument('--max-length', type=int, default=6000, help='longest memory probe (default: %(default)s)')
    ap.add_argument('--work-dir', help='where the run writes (default: $TMPDIR); removed unless --keep')
    ap.add_argument('--keep', action='store_true', help='keep the work directory (logs/ holds each command\'s output)')
    args = ap.parse_args(argv)
    if args.worker_targets < 2:   # one record would be named after its file, not its A3M
        ap.error('--worker-targets: give 2 or more')
    budget = Budget(args.budget)
    gpus, cards, no_listing = nvidia_smi(args.nvidia_smi)
    rows, sees_gpu = stack_rows(args.python, budget)
    if gpus:
        rows.append(Row('card', 'nvidia-smi -L', '%d GPU%s' % (len(gpus), 's' if len(gpus) > 1 else ''), '',
                        '; '.join(gpus)))
        for name, mib in cards[:1]:
            rows.append(Row('card', 'nvidia-smi memory.total', str(mib), 'MiB', name))
    else:
        rows.append(Row('card', 'nvidia-smi -L', 'no GPU', '', no_listing))
    heading = 'gpu-check %s on %s: %s; python %s' % (datetime.date.today().isoformat(), socket.gethostname(),
                                                      cards[0][0] if cards else 'no GPU listed', args.python)
    status = 0
    last = None
    if not gpus and not sees_gpu:
        last = no_gpu_line()
    elif not sees_gpu:
        last = 'GPU listed by nvidia-smi but jax (%s) sees none: %s not measured (give --python of a GPU stack)' % (
            args.python, ', '.join(GPU_ROWS))
        status = 1
    else:
        heading += '; STAND-IN full-size random weights (%s)' % MODEL
        rows.extend(gpu_rows(args, budget))
    print(heading)
    sys.stdout.write(render_table(rows))
    if last:
        print(last)
    print('budget %.0f s, used %.0f s' % (budget.total, budget.used()))
    return 1 if failed(rows, bool(gpus or sees_gpu)) else status


if __name__ == '__main__':
    sys.exit(main())
