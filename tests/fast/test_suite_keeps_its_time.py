"""The suite's own machinery (issue #24): the Slurm and installed-venv tests share one xdist
worker, and `make test` fails, after the durations list, when it runs past its budget. Both run
a small generated suite with the real tests/conftest.py as a plugin."""
import os
import subprocess
import sys
import time

from conftest import ROOT

GENERATED = '''
import os
import pytest

@pytest.fixture(scope='session')
def slurm():
    return 'cluster'

@pytest.fixture(scope='session')
def installed_kit():
    return 'prefix'

def record(kind, i):
    with open(os.path.join(%(out)r, '%%s-%%d' %% (kind, i)), 'w') as f:
        f.write(os.environ.get('PYTEST_XDIST_WORKER', 'none'))

@pytest.mark.parametrize('i', range(4))
def test_cluster(slurm, i):
    record('site', i)

@pytest.mark.parametrize('i', range(4))
def test_venv(installed_kit, i):
    record('site', 10 + i)

@pytest.mark.parametrize('i', range(8))
def test_other(i):
    record('other', i)
'''


def run_suite(tmp_path, *args, env=None):
    out, suite = tmp_path / 'workers', tmp_path / 'suite'
    out.mkdir(parents=True)
    suite.mkdir()
    (suite / 'test_generated.py').write_text(GENERATED % {'out': str(out)})
    res = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'conftest', '-p', 'no:cacheprovider',
                          '--rootdir', str(suite), str(suite)] + list(args),
                         cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                         env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, 'tests'), **(env or {})))
    return res, {f: (out / f).read_text() for f in os.listdir(str(out))}


def test_site_tests_share_one_worker(tmp_path):
    res, workers = run_suite(tmp_path, '-n', '2', '--dist', 'loadgroup')
    assert res.returncode == 0, res.stdout
    assert len(workers) == 16
    assert len({w for f, w in workers.items() if f.startswith('site')}) == 1, workers
    assert all(w.startswith('gw') for w in workers.values()), workers   # the rest: wherever xdist sends them


def test_a_run_past_its_budget_fails_after_the_durations(tmp_path):
    late = {'TEST_STARTED': str(int(time.time()) - 100), 'TEST_BUDGET_S': '10'}
    res, _ = run_suite(tmp_path / 'late', '--durations=3', env=late)
    assert res.returncode == 1, res.stdout
    assert 'slowest 3 durations' in res.stdout
    assert res.stdout.index('slowest 3 durations') < res.stdout.index('past its budget of 10 s')
    res, _ = run_suite(tmp_path / 'in-time', env=dict(late, TEST_BUDGET_S='1000'))
    assert res.returncode == 0 and 'budget' not in res.stdout, res.stdout
