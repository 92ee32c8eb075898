"""The install methods' commands and environments (installer/methods.py): the conda command line
older condas accept, and check-install running the runtime's commands in the environment the
wrapper (installer/wrapper.sh) gives them. Conda cannot run here: a STAND-IN `conda` with the
option parser of conda 4.x's `env create` records what it was given."""
import json
import os
import subprocess
import sys

import pytest

from installer import install, methods

# STAND-IN for conda 4.x: its `env create` options, nothing else (-y/--yes came in conda 23.x).
OLD_CONDA = '''#!%s
import argparse, json, os, sys
ap = argparse.ArgumentParser(prog='conda')
sub = ap.add_subparsers(dest='command')
env = sub.add_parser('env').add_subparsers(dest='env_command')
create = env.add_parser('create')
for flags in (('-f', '--file'), ('-n', '--name'), ('-p', '--prefix')):
    create.add_argument(*flags)
for flags in (('-q', '--quiet'), ('--force',), ('--json',), ('-d', '--dry-run')):
    create.add_argument(*flags, action='store_true')
args = ap.parse_args()   # an unknown option: exit 2, "unrecognized arguments"
with open(os.environ['STANDIN_LOG'], 'a') as f:
    f.write(json.dumps({'argv': sys.argv[1:], 'always_yes': [os.environ.get('CONDA_ALWAYS_YES'),
                                                              os.environ.get('MAMBA_ALWAYS_YES')]}) + '\\n')
os.makedirs(os.path.join(args.prefix, 'bin'))
'''
# STAND-IN runtime command: records its name, PATH and LD_LIBRARY_PATH; python also plays the stack check.
RECORDER = '''#!/bin/sh
printf '%s|%s|%s\\n' "$(basename "$0")" "$PATH" "${LD_LIBRARY_PATH-<unset>}" >> "$STANDIN_LOG"
if [ "$(basename "$0")" = python ]; then echo 'OK   stand-in stack check'; fi
'''


def test_conda_env_create_is_a_command_old_condas_accept(tmp_path, monkeypatch):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    (bindir / 'conda').write_text(OLD_CONDA % sys.executable)
    (bindir / 'conda').chmod(0o755)
    log = tmp_path / 'conda.log'
    monkeypatch.setenv('PATH', str(bindir))
    monkeypatch.setenv('STANDIN_LOG', str(log))
    finished = []
    monkeypatch.setattr(methods.stack, 'finish', lambda python, variant, *rest: finished.append((python, variant)))
    build = tmp_path / 'envs' / '20260101-000000-000000'
    conda = methods.get('conda')

    conda.build(str(build), 'cuda12', {})   # a refused option would raise here (exit 2)
    call = json.loads(log.read_text())
    assert call['argv'] == ['env', 'create', '-p', str(build), '-f', os.path.join(methods.RECIPES, 'cuda12.conda.yml')]
    assert conda.create_command(str(build), 'cuda12') == [str(bindir / 'conda')] + call['argv']
    assert call['always_yes'] == ['true', 'true']     # mamba 2 asks before creating unless told not to
    assert finished == [(str(build / 'bin' / 'python'), 'cuda12')]


def fake_runtime(tmp_path):
    runtime = tmp_path / 'env'
    (runtime / 'lib').mkdir(parents=True)
    (runtime / 'bin').mkdir()
    for name in ('python', 'jackhmmer', 'hhblits', 'hhsearch'):
        (runtime / 'bin' / name).write_text(RECORDER)
        (runtime / 'bin' / name).chmod(0o755)
    return runtime


def installed(tmp_path, method, runtime):
    vardir = install.variant_dir(str(tmp_path / 'prefix'), 'cpu')
    for sub in ('bin', 'etc'):
        os.makedirs(os.path.join(vardir, sub))
    install.install_site_config(vardir, install.EXAMPLE_SITE_CONFIG)
    install.write_runtime_env(vardir, method, str(runtime), 'cpu')
    install.install_wrappers(vardir)
    return vardir


def records(log):
    return [line.split('|') for line in log.read_text().splitlines()]


@pytest.mark.parametrize('method', ['conda', 'venv'])
@pytest.mark.parametrize('ld_library_path', [None, '', '/host/cuda/lib64'])
def test_the_wrapper_gives_the_environment_the_method_describes(tmp_path, method, ld_library_path):
    runtime = fake_runtime(tmp_path)
    vardir = installed(tmp_path, method, runtime)
    log = tmp_path / 'calls.log'
    host = {k: v for k, v in os.environ.items() if k != 'LD_LIBRARY_PATH'}
    host.update(STANDIN_LOG=str(log))
    if ld_library_path is not None:
        host['LD_LIBRARY_PATH'] = ld_library_path
    res = subprocess.run([os.path.join(vardir, 'bin', 'alphafold-msa'), '--version'], env=host,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 0, res.stdout
    expected = methods.get(method).environment(str(runtime), host)
    assert records(log) == [['python', expected['PATH'], expected.get('LD_LIBRARY_PATH', '<unset>')]]
    if method == 'conda':
        assert expected['LD_LIBRARY_PATH'].split(':')[0] == str(runtime / 'lib')


def test_check_install_runs_the_runtime_in_the_wrappers_environment(tmp_path, monkeypatch, capsys):
    """A conda install's CUDA libraries are in its lib/: the wrapper puts it on LD_LIBRARY_PATH,
    so `check-install GPU=1` must too, or it tests a stack that jobs never run."""
    runtime = fake_runtime(tmp_path)
    vardir = installed(tmp_path, 'conda', runtime)
    log = tmp_path / 'calls.log'
    monkeypatch.setenv('STANDIN_LOG', str(log))
    monkeypatch.setenv('LD_LIBRARY_PATH', '/host/cuda/lib64')
    monkeypatch.setenv('ALPHAFOLD_DATA_DIR', str(tmp_path))
    assert install.check_install(os.path.dirname(os.path.dirname(vardir)), 'cpu', want_gpu=True) == 0, \
        capsys.readouterr().out
    wanted = ['%s:%s' % (runtime / 'bin', os.environ['PATH']), '%s:/host/cuda/lib64' % (runtime / 'lib')]
    calls = records(log)
    # jackhmmer, hhblits, hhsearch, the wrapper's python (alphafold-msa --version), the stack check
    assert [c[0] for c in calls] == ['jackhmmer', 'hhblits', 'hhsearch', 'python', 'python']
    assert all(c[1:] == wanted for c in calls), calls
    expected = methods.get('conda').environment(str(runtime))
    assert [expected['PATH'], expected['LD_LIBRARY_PATH']] == wanted
