"""The variants' locked stacks against the real package index; the cpu variant's stack installed
into a fresh Python 3.11 venv by `make install` (its CPU stage, model forward pass and AMBER relax
run through the module in test_modules.test_end_to_end_through_the_module); the cuda12-pip lock's
CPU equivalent run here; and every row's AlphaFold revision installed as a package. AlphaFold is
DeepMind's own, from ALPHAFOLD_SOURCE (the Makefile's; offline, the sha256-checked archives)."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ARCHIVES, ROOT
from installer import locks, recipes, sources, stack

ROWS = recipes.variants()
UV = os.path.join(os.path.dirname(sys.executable), 'uv')


def pip_platforms(row):
    """pip's --platform list for a row's glibc: pip does not widen manylinux_2_X by itself."""
    top = int(re.match(r'x86_64-manylinux_2_(\d+)$', row['platform']).group(1))
    tags = ['manylinux_2_%d_x86_64' % m for m in range(top, 4, -1)]
    return tags + ['manylinux2014_x86_64', 'manylinux2010_x86_64', 'manylinux1_x86_64']


def pypi_pins(variant):
    """The lock's pins PyPI must have (not those from the --find-links page), plus venv_extra."""
    pins = ['%s==%s' % (name, version) for name, version, other in locks.pins(variant) if not other]
    return pins + locks.top_level(ROWS[variant], 'venv_extra')


def as_set(pins):
    return {locks.normalise(p.split('==')[0]) + '==' + p.split('==')[1] for p in pins}


def start_pip_check(variant, work):
    """pip's dry run of the variant's PyPI pins, for its Python and glibc, without this machine's
    pip configuration: (process, report path)."""
    row = ROWS[variant]
    work.mkdir()
    cmd = [sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-deps', '--ignore-installed', '--quiet',
           '--python-version', row['python'], '--target', str(work / 'target'),
           '--index-url', 'https://pypi.org/simple', '--report', str(work / 'report.json')]
    for tag in pip_platforms(row):
        cmd += ['--platform', tag]
    proc = subprocess.Popen(cmd + pypi_pins(variant), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, env=dict(os.environ, PIP_CONFIG_FILE=os.devnull))
    return proc, work / 'report.json'


def test_every_locked_pin_is_on_pypi_for_each_variants_python(tmp_path):
    """Every variant's pins, found by pip for that variant's Python and glibc (all variants at
    once: the checks wait on the network, not on these 2 cores)."""
    checks = {variant: start_pip_check(variant, tmp_path / variant) for variant in sorted(ROWS)}
    for variant, (proc, report_path) in checks.items():
        output = proc.communicate()[0]
        assert proc.returncode == 0, (variant, output[-3000:])
        report = json.loads(report_path.read_text())
        found = {'%s==%s' % (locks.normalise(i['metadata']['name']), i['metadata']['version'])
                 for i in report['install']}
        assert found == as_set(pypi_pins(variant)), variant


@pytest.mark.parametrize('variant', sorted(ROWS))
def test_lock_is_complete_and_consistent(variant, tmp_path):
    """Resolving the lock itself (today, with dependencies) adds nothing and changes nothing: each
    pin's requirements are met by the other pins."""
    row = ROWS[variant]
    lock = tmp_path / 'lock.txt'
    lock.write_text('\n'.join('%s==%s' % (n, v) for n, v, other in locks.pins(variant) if not other) + '\n')
    cmd = [UV, 'pip', 'compile', str(lock), '--python-version', row['python'], '--python-platform', row['platform'],
           '--index-url', 'https://pypi.org/simple', '--no-header', '--no-annotate', '--quiet']
    other = [name for name, _, from_other in locks.pins(variant) if from_other]
    if other:   # the CUDA jaxlib is on Google's page, which the lock's packages do not need to resolve
        (tmp_path / 'excluded.txt').write_text('\n'.join(other) + '\n')
        cmd += ['--excludes', str(tmp_path / 'excluded.txt')]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert res.returncode == 0, res.stderr[-3000:]
    resolved = [l.strip() for l in res.stdout.splitlines() if l.strip()]
    assert as_set(resolved) == as_set(lock.read_text().split())


def venv_python(prefix):
    envs = prefix / '0.1.0' / 'cpu' / 'envs'
    return str(envs / os.listdir(str(envs))[0] / 'bin' / 'python')


def test_cpu_venv_holds_exactly_the_lock(installed_kit):
    python = venv_python(installed_kit)
    res = subprocess.run([python, '-m', 'pip', 'list', '--format', 'json'], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True)
    have = {'%s==%s' % (locks.normalise(p['name']), p['version']) for p in json.loads(res.stdout)}
    # DeepMind's a4315dd calls itself 2.3.2 (alphafold/version.py); never the fork.
    wanted = as_set(pypi_pins('cpu') + ['alphafold==2.3.2', 'alphafold-hpc-kit==0.1.0'])
    assert have - {p for p in have if p.startswith(('pip==', 'setuptools=='))} == wanted - {
        p for p in wanted if p.startswith('setuptools==')}
    check = subprocess.run([python, '-m', 'pip', 'check'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
    assert check.returncode == 0, check.stdout


def test_stack_check_in_the_cpu_venv(installed_kit):
    res = subprocess.run([venv_python(installed_kit), '-m', 'fold_runtime.stack_check'], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 0, res.stdout
    assert 'OK   jax starts: jax 0.4.26' in res.stdout and 'OK   OpenMM starts: OpenMM 8.2' in res.stdout


def test_make_locks_reproduces_the_committed_locks(tmp_path):
    """The locks are what `make locks` resolves from the table today (resolved_as_of keeps
    tomorrow's releases out)."""
    assert shutil.which('uv', path=os.path.dirname(UV))
    for name, row in ROWS.items():
        env_path = os.path.dirname(UV) + os.pathsep + os.environ['PATH']
        code = ('import sys; sys.path.insert(0, %r); from installer import locks, recipes; '
                'sys.stdout.write(locks.resolve(%r, recipes.variants()[%r]))' % (ROOT, name, name))
        res = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, env=dict(os.environ, PATH=env_path))
        with open(locks.path(name)) as f:
            assert res.stdout == f.read(), name


@pytest.fixture(scope='module')
def cuda12_pip_cpu_equivalent(tmp_path_factory):
    """A fresh Python 3.11 venv with the cuda12-pip lock's CPU equivalent, installed by the
    installer's finish-stack: the lock without the CUDA plugins and nvidia-* wheels (jaxlib and
    OpenMM are the same versions' CPU builds), DeepMind's a4315dd, and the kit."""
    root = tmp_path_factory.mktemp('cuda12-pip-cpu')
    lock = root / 'lock.txt'
    lines = [l for l in open(locks.path('cuda12-pip')).read().splitlines()
             if not l.startswith(('nvidia-', 'jax-cuda12-', 'openmm-cuda-'))]
    lock.write_text('\n'.join(lines) + '\n')
    subprocess.run([sys.executable, '-m', 'venv', str(root / 'venv')], check=True)
    python = str(root / 'venv' / 'bin' / 'python')
    row = ROWS['cuda12-pip']
    stack.finish(python, 'cuda12-pip', row, ARCHIVES, locks.top_level(row, 'venv_extra'),
                 lock=str(lock))
    return python


def test_cuda12_pip_lock_cpu_equivalent_predicts_and_relaxes(cuda12_pip_cpu_equivalent, targets, full_data_dir,
                                                             tmp_path):
    """The cuda12-pip lock's own versions (dm-haiku 0.0.12, jax 0.4.26, TensorFlow 2.16.1, numpy
    1.24.3, OpenMM 8.2.0) with DeepMind's code run the stack check, the CPU stage, a model and an
    AMBER relax."""
    check = subprocess.run([cuda12_pip_cpu_equivalent, '-m', 'fold_runtime.stack_check'], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True)
    assert check.returncode == 0 and 'OK   jax starts: jax 0.4.26' in check.stdout, check.stdout
    assert 'AlphaFold: alphafold 2.3.2' in check.stdout, check.stdout
    res = subprocess.run([cuda12_pip_cpu_equivalent, '-m', 'fold_runtime', 'run', '--fasta', targets['conotoxin'],
                          '--output-dir', str(tmp_path), '--data-dir', full_data_dir, '--cpus', '2',
                          '--model-preset', 'monomer_ptm', '--models', 'model_1', '--num-recycle', '0'],
                         cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:]
    relaxed = (tmp_path / 'conotoxin' / 'relaxed_model_1_ptm.pdb').read_text()
    assert ' H ' in relaxed and (tmp_path / 'conotoxin' / 'ranked_0.pdb').read_text() == relaxed


def test_every_rows_alphafold_revision_installs_its_alphafold_package(tmp_path):
    """Each row's pinned revision, from its sha256-checked archive, installed by the installer into
    a bare venv: `alphafold` resolves to a package holding the revision's modules and the
    stereo-chemistry file (a4315dd's own build installs only run_alphafold.py)."""
    for revision in sorted({row['alphafold'] for row in ROWS.values()}):
        venv = tmp_path / revision[:7]
        subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
        python = str(venv / 'bin' / 'python')
        pip = [python, '-m', 'pip', 'install', '--no-deps', '--quiet']
        stack.install_alphafold(python, pip, {'alphafold': revision, 'alphafold_source': revision},
                                ARCHIVES, str(tmp_path / ('src-' + revision[:7])))
        package = stack.package_dir(python)
        stack.place_stereo(package)
        assert package.startswith(str(venv)), (revision, package)
        for module in ('model/modules.py', 'data/pipeline.py', 'relax/amber_minimize.py'):
            assert os.path.isfile(os.path.join(package, module)), (revision, module)
        assert sources.sha256_of(os.path.join(package, 'common', sources.STEREO_FILE)) == sources.STEREO_SHA256
