"""Shared fixtures: the real-data test databases, targets, and running the kit's commands."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get('TESTDATA_CACHE', os.path.expanduser('~/.cache/alphafold-hpc-kit'))


@pytest.fixture(scope='session')
def data_dir():
    """The small AlphaFold data directory built from real data (cached across runs)."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'build_test_dbs.py'),
                          '--cache', CACHE], check=True, stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    return out.strip().splitlines()[-1]


@pytest.fixture(scope='session')
def targets(data_dir):
    """name -> FASTA path: hbb_human (many homologs) and e2_dbd (has a real template, 1A7G)."""
    d = os.path.join(data_dir, 'targets')
    return {os.path.splitext(f)[0]: os.path.join(d, f) for f in os.listdir(d)}


def run_kit(*args, env=None, timeout=600, **kw):
    """Run `python -m fold_runtime ARGS`; returns the CompletedProcess (stdout+stderr as text)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, '-m', 'fold_runtime'] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, env=full_env, timeout=timeout, cwd=ROOT, **kw)


@pytest.fixture
def kit():
    return run_kit
