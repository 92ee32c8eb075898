"""benchmarks/gpu_check.py (make gpu-check) without a GPU: its table's shape from fake measurements,
the no-GPU path (the real stack check, a STAND-IN nvidia-smi that lists no GPU: exit 0, the
"no GPU" line, nothing built), the bisection within a budget, and the GPU rows' plumbing, run
against a STAND-IN nvidia-smi listing an H100 and a STAND-IN GPU stack (a `python` that plays
the stack check and the kit's commands, writing the files the kit writes). No model runs."""
import importlib.util
import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPT = os.path.join(ROOT, 'benchmarks', 'gpu_check.py')
_spec = importlib.util.spec_from_file_location('gpu_check', SCRIPT)
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)
Row = gpu_check.Row

# STAND-IN for nvidia-smi on a node with one H100: `-L` and the memory query, as the real one prints them.
NVIDIA_SMI_H100 = '''#!/bin/sh
# STAND-IN nvidia-smi (no GPU here): one H100.
case "$1" in
  -L) echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-stand-in)";;
  --query-gpu=name,memory.total) echo "NVIDIA H100 80GB HBM3, 81559 MiB";;
  *) exit 2;;
esac
'''
# STAND-IN nvidia-smi on a machine with the driver's tools but no GPU (the real one's words and status).
NVIDIA_SMI_NONE = '''#!/bin/sh
# STAND-IN nvidia-smi: no GPU.
echo "No devices were found"
exit 6
'''
# STAND-IN for a GPU node's AlphaFold stack: `python -m fold_runtime.stack_check --gpu` passes (or,
# with STANDIN_NO_JAX_GPU, jax sees no GPU); `-c` (the ptxas probe) finds ptxas; the kit's commands
# write what the kit writes (features and their meta; timings.json with compile_/predict_/relax_
# keys; the batch worker's timings record; report's JSON). It runs out of memory above
# STANDIN_LIMIT_<MODE> residues, as alphafold-predict reports it (exit 7); a length compiled once
# is a cache hit in the next process (ALPHAFOLD_JAX_CACHE_DIR).
STACK = '''#!%(python)s
# STAND-IN GPU stack for benchmarks/gpu_check.py: no GPU, no model here.
import json, os, sys
argv = sys.argv[1:]
def opt(name, default=None):
    return argv[argv.index(name) + 1] if name in argv else default
def values(name):
    i = argv.index(name) + 1
    out = []
    while i < len(argv) and not argv[i].startswith('--'):
        out.append(argv[i]); i += 1
    return out
if argv[:2] == ['-m', 'fold_runtime.stack_check']:
    jax = 'FAIL jax starts and sees a GPU: RuntimeError: no GPU visible to jax (devices: TFRT_CPU_0)' \\
        if os.environ.get('STANDIN_NO_JAX_GPU') else 'OK   jax starts and sees a GPU: jax 0.4.26, devices: cuda:0'
    print('OK   kit --version: alphafold-hpc-kit (stand-in)\\nOK   builds a model config: model_1_ptm, 48 evoformer blocks\\n'
          + jax + '\\nOK   OpenMM starts with its CUDA platform: OpenMM 8.2, platforms: Reference, CPU, CUDA')
    sys.exit(1 if os.environ.get('STANDIN_NO_JAX_GPU') else 0)
if argv[0] == '-c':
    print('PATH\\t/stand-in/bin/ptxas\\tCuda compilation tools, release 12.4, V12.4.131')
    sys.exit(0)
assert argv[:2] == ['-m', 'fold_runtime'], argv
command = argv[2] if argv[2] != 'batch' else 'batch ' + argv[3]
with open(os.environ['STANDIN_LOG'], 'a') as f:
    f.write(json.dumps(argv[2:]) + '\\n')
def write(path, data):
    with open(path, 'w') as f:
        json.dump(data, f)
if command == 'msa':
    for fasta, a3m in zip(values('--fasta'), values('--msa')):
        assert open(fasta).read() == open(a3m).read()   # one-sequence A3M: the query only
        name = os.path.splitext(os.path.basename(fasta))[0]
        tdir = os.path.join(opt('--output-dir'), name)
        os.makedirs(tdir)
        open(os.path.join(tdir, 'features.pkl'), 'w').write('stand-in')
        write(os.path.join(tdir, 'features.meta.json'), {'sequence_length': len(open(fasta).read().split()[1])})
elif command == 'predict':
    mode, cache = opt('--memory-mode'), os.environ['ALPHAFOLD_JAX_CACHE_DIR']
    if mode == 'unified':
        print('memory mode unified (requested unified); set TF_FORCE_UNIFIED_MEMORY=1; set XLA_PYTHON_CLIENT_MEM_FRACTION=4.0')
    for tdir in values('--target-dir'):
        n = json.load(open(os.path.join(tdir, 'features.meta.json')))['sequence_length']
        if n > int(os.environ['STANDIN_LIMIT_' + mode.upper()]):
            sys.exit('alphafold-predict: error: the GPU ran out of memory: RESOURCE_EXHAUSTED: Out of memory')
        timings = json.load(open(os.path.join(tdir, 'timings.json'))) if os.path.exists(os.path.join(tdir, 'timings.json')) else {}
        if opt('--models-to-relax') == 'best':
            timings['relax_model_1_ptm'] = 1.5 if '--use-gpu-relax' in argv else 12.5
        else:
            marker = os.path.join(cache, '%%d-%%s' %% (n, opt('--num-recycle')))
            compile_s = 0.75 if os.path.exists(marker) else 30.0 + n / 100.0
            os.makedirs(cache, exist_ok=True)
            open(marker, 'w').close()
            timings.update({'compile_model_1_ptm': compile_s, 'compiles_model_1_ptm': 12, 'predict_model_1_ptm': n / 50.0,
                            'predict_and_compile_model_1_ptm': compile_s + n / 50.0})
        write(os.path.join(tdir, 'timings.json'), timings)
elif command == 'batch submit':
    names = [l[1:].split()[0] for l in open(opt('--fasta')) if l.startswith('>')]
    for name in names:
        assert os.path.exists(os.path.join(opt('--msa'), name + '.a3m'))
    os.makedirs(os.path.join(opt('--output-dir'), '.batch', 'timings'))
    write(os.path.join(opt('--output-dir'), '.batch', 'timings', 'worker-0-local.json'),
          {'wall_s': 120.0, 'busy_s': 96.0, 'targets': {n: {'predict_s': 4.8, 'relax_s': 0.0, 'error': None} for n in names}})
elif command == 'batch report':
    print('{"compile_s": 1.5, "compiles": 2, "gpu_busy_fraction": 0.8, "proteins_per_hour": 500.0, "wall_s": 130.0}')
else:
    sys.exit('stand-in: unknown command %%r' %% command)
'''


def executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def lines_of(text):
    return text.rstrip('\n').split('\n')


def test_table_shape():
    rows = [Row('check-install --gpu', 'jax starts and sees a GPU', 'OK', '', 'jax 0.4.26, devices: cuda:0'),
            Row('card', 'nvidia-smi memory.total', 81559, 'MiB', 'NVIDIA H100 80GB HBM3'),
            Row('predict 1000 res', 'compile (model_1_ptm, 3 recycles)', gpu_check.seconds(71.234), 's', '12 XLA compiles'),
            Row('predict 100 res', 'run (model_1_ptm, 3 recycles)', gpu_check.seconds(1.2345), 's', ''),
            Row('GPU worker', '20 targets, 50-300 res', '612', 'targets/h', 'worker 118 s'),
            Row('GPU worker', 'accelerator busy', '85', '%', ''),
            Row('memory unified', '--memory-mode unified, longest that fits', '2600', 'res', 'out of memory at 2700')]
    lines = lines_of(gpu_check.render_table(rows))
    assert len(lines) == 1 + len(rows)
    header = lines[0]
    assert header.split() == ['check', 'setting', 'result', 'unit', 'detail']
    starts = [header.index(name) for name in ('check', 'setting', 'result', 'unit', 'detail')]
    for line, row in zip(lines[1:], rows):
        assert line == line.rstrip()
        for start, end, cell in zip(starts, starts[1:] + [None], row):
            assert line[start:end].rstrip() == str(cell), (line, cell)   # each cell in its column
            assert start == 0 or not str(cell) or line[start - 2:start] == '  '   # columns apart
    assert [l[starts[2]:starts[3]].split() for l in lines[3:5]] == [['71.2'], ['1.23']]
    assert [l[starts[3]:starts[4]].strip() for l in lines[1:]] == ['', 'MiB', 's', 's', 'targets/h', '%', 'res']


def test_no_gpu_prints_the_cpu_side_checks_and_exits_0(tmp_path):
    smi = executable(tmp_path / 'nvidia-smi', NVIDIA_SMI_NONE)
    cache = tmp_path / 'cache'
    cache.mkdir()
    res = subprocess.run([sys.executable, SCRIPT, '--nvidia-smi', smi, '--cache', str(cache)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert res.returncode == 0, res.stdout
    out = lines_of(res.stdout)
    assert gpu_check.no_gpu_line() in out
    assert gpu_check.no_gpu_line() == ('no GPU: predict time, memory modes, compile cache, GPU worker, relax CPU vs CUDA '
                                       'not measured')
    table = out[1:out.index(gpu_check.no_gpu_line())]
    assert table[0].split() == ['check', 'setting', 'result', 'unit', 'detail']
    assert any(l.startswith('check-install --gpu') and ' kit --version ' in l and ' OK ' in l for l in table)
    assert any(' jax starts and sees a GPU ' in l and ' FAIL ' in l for l in table)   # the stack check's line, as it is
    assert any(' ptxas ' in l and (' OK ' in l or ' FAIL ' in l) for l in table)
    assert any(l.startswith('card ') and ' no GPU ' in l and 'No devices were found' in l for l in table)
    assert not any(l.startswith(('predict', 'memory', 'compile cache', 'GPU worker', 'relax')) for l in table)
    assert os.listdir(str(cache)) == []   # nothing built without a GPU


def test_bisection_finds_the_longest_fit_and_keeps_the_budget():
    limit, probed = 2600, []

    def probe(n, timeout):
        probed.append(n)
        return ('fits' if n <= limit else 'oom'), 10.0, ''
    outcomes = {100: 'fits', 1000: 'fits'}
    fit, oom, log, why = gpu_check.longest_fit(probe, outcomes, lambda: 1000.0, 1000, 6000)
    assert (fit, oom) == (2600, 2650) and why == 'resolved to within 100 residues'
    assert probed == [2000, 4000, 3000, 2500, 2750, 2600, 2650] and len(log) == len(probed)
    assert outcomes == dict([(100, 'fits'), (1000, 'fits')] + [(n, 'fits' if n <= limit else 'oom') for n in probed])
    # The budget: after two probes no time is left; the answer is what was reached, and says so.
    clock = iter([500.0, 200.0, 10.0])
    fit, oom, log, why = gpu_check.longest_fit(probe, {1000: 'fits'}, lambda: next(clock), 1000, 6000)
    assert (fit, oom) == (2000, 4000) and why == 'budget spent (next probe 3000 residues)'
    assert log == ['2000 fits 10 s', '4000 out of memory 10 s']
    # A probe stopped at the budget settles nothing.
    fit, oom, log, why = gpu_check.longest_fit(lambda n, t: ('stopped', t, ''), {1000: 'fits'}, lambda: 90.0, 1000, 6000)
    assert (fit, oom) == (1000, None) and why == 'budget spent during the probe at 2000 residues'


@pytest.fixture
def stand_in_gpu_node(tmp_path, monkeypatch):
    """A STAND-IN H100 listing and GPU stack; the inputs (test databases, full-size weights) are
    not built: the stand-in stack reads no weights."""
    monkeypatch.setenv('STANDIN_LOG', str(tmp_path / 'calls.jsonl'))
    monkeypatch.setenv('STANDIN_LIMIT_DEFAULT', '1500')
    monkeypatch.setenv('STANDIN_LIMIT_UNIFIED', '2600')

    def prepare(check):
        check.data_dir = check.db_dir = str(tmp_path / 'data')
        check.protein = 'VHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKVKAHGKKVLGAFSDGLAHLDNLKGTFATLSELHCDKLHVDPENFRLLGNVLVCVLAHHFGKEFTPPVQAAYQKVVAGVANALAHKYH'
        check.inputs = os.path.join(check.work, 'inputs')
        os.makedirs(check.inputs)
    monkeypatch.setattr(gpu_check.Check, 'prepare', prepare)
    return ['--nvidia-smi', executable(tmp_path / 'nvidia-smi', NVIDIA_SMI_H100), '--python',
            executable(tmp_path / 'python', STACK % {'python': sys.executable}), '--work-dir', str(tmp_path)]


def cells(table_lines):
    """Each row of a printed table as its cells, cut at the header's columns."""
    header = table_lines[0]
    starts = [header.index(name) for name in ('check', 'setting', 'result', 'unit', 'detail')]
    return [[line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])] for line in table_lines[1:]]


def test_gpu_rows_from_a_stand_in_gpu_stack(stand_in_gpu_node, tmp_path, capsys):
    assert gpu_check.main(stand_in_gpu_node + ['--budget', '300']) == 0
    lines = lines_of(capsys.readouterr().out)
    assert lines[0].startswith('gpu-check ') and 'NVIDIA H100 80GB HBM3' in lines[0]
    assert lines[-1].startswith('budget 300 s, used ')
    rows = cells(lines[1:-1])
    got = {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}
    assert got[('check-install --gpu', 'ptxas')][0] == 'OK'
    assert got[('card', 'nvidia-smi memory.total')] == ('81559', 'MiB', 'NVIDIA H100 80GB HBM3')
    for n in (100, 300, 500, 1000):
        assert got[('predict %d res' % n, 'compile (model_1_ptm, 3 recycles)')] == ('%.1f' % (30 + n / 100.0), 's',
                                                                                    '12 XLA compiles')
        assert got[('predict %d res' % n, 'run (model_1_ptm, 3 recycles)')][:2] == (gpu_check.seconds(n / 50.0), 's')
    result, unit, detail = got[('compile cache', 'second process, 100 res (seen)')]
    assert (result, unit) == ('0.75', 's') and 'first process compiled it in 31.0 s' in detail
    assert got[('relax 100 res', 'OpenMM CPU (--no-gpu-relax)')][:2] == ('12.5', 's')
    assert got[('relax 100 res', 'OpenMM CUDA (--use-gpu-relax)')][:2] == ('1.50', 's')
    assert got[('GPU worker', '20 targets, 50-300 res')][:2] == ('600', 'targets/h')   # 20 targets in 120 s
    assert got[('GPU worker', 'accelerator busy')][:2] == ('80', '%')
    result, unit, detail = got[('memory default', '--memory-mode default, longest that fits')]
    assert (result, unit) == ('1500', 'res') and 'out of memory at 1600' in detail, detail
    assert '1000 fits (predict row, 3 recycles)' in detail and 'resolved to within 100 residues' in detail
    result, unit, detail = got[('memory unified', '--memory-mode unified, longest that fits')]
    assert (result, unit) == ('2600', 'res') and 'out of memory at 2700' in detail, detail
    assert 'the kit set TF_FORCE_UNIFIED_MEMORY=1, XLA_PYTHON_CLIENT_MEM_FRACTION=4.0;' in detail
    with open(str(tmp_path / 'calls.jsonl')) as f:
        calls = [json.loads(l) for l in f]
    assert calls[0][0] == 'msa' and '--no-templates' in calls[0] and '--msa' in calls[0]
    predict = calls[1]
    assert predict[0] == 'predict' and predict.count('--target-dir') == 1
    assert [predict[predict.index(o) + 1] for o in ('--models', '--model-preset', '--num-recycle', '--memory-mode',
                                                    '--models-to-relax')] == ['model_1', 'monomer_ptm', '3', 'default',
                                                                              'none']
    submit = next(c for c in calls if c[:2] == ['batch', 'submit'])
    assert submit[submit.index('--buckets') + 1] == '100,300,500,1000' and '--no-templates' in submit
    probes = [c for c in calls if c[0] == 'predict' and c[c.index('--num-recycle') + 1] == '0']
    assert [c[c.index('--memory-mode') + 1] for c in probes][:4] == ['default'] * 4


def test_gpu_listed_but_not_seen_by_jax_fails(stand_in_gpu_node, monkeypatch, capsys):
    monkeypatch.setenv('STANDIN_NO_JAX_GPU', '1')
    assert gpu_check.main(stand_in_gpu_node) == 1
    out = capsys.readouterr().out
    assert 'GPU listed by nvidia-smi but jax' in out and 'not measured' in out
    assert 'predict 100 res' not in out
