"""Shared fixtures: the real-data test databases, targets, and running the kit's commands."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get('TESTDATA_CACHE', os.path.expanduser('~/.cache/alphafold-hpc-kit'))
# DeepMind's sources at the variants' revisions, as sha256-checked archives (the Makefile's
# ALPHAFOLD_ARCHIVES): every install in the suite takes AlphaFold from them.
ARCHIVES = os.environ.get('ALPHAFOLD_ARCHIVES', '')
# Every model run in the suite shares one persistent JAX compilation cache, as jobs at a site do.
os.environ.setdefault('ALPHAFOLD_JAX_CACHE_DIR', os.path.join(CACHE, 'jax-cache'))
# On DeepMind's jax 0.4.26 a model's first XLA compile on these 2 cores takes minutes, most of it
# in LLVM; level 0 halves it. A test-speed setting only: every comparison in the suite runs both
# sides under it (the kit's subprocesses inherit it), and no test compares with stored numbers.
os.environ.setdefault('XLA_FLAGS', '--xla_backend_optimization_level=0')
# The GPU-stage tests run two models of monomer_ptm without recycling, on the 24-residue conotoxin:
# models 1 and 2 share one network (one trace and compile per process on DeepMind's slow-to-trace jax).
# Recycling puts the network in a while loop that is traced on top of the final pass, which doubles
# a predict process's CPU time here; the tests that compare predictions (parity with stock, padding,
# the multimer run) keep one recycle (RECYCLE_ARGS), and the others test what does not depend on it.
GPU_ARGS = ('--model-preset', 'monomer_ptm', '--models', 'model_1,model_2', '--num-recycle', '0')
RECYCLE_ARGS = GPU_ARGS[:-1] + ('1',)


# Tests that need one of these share one xdist worker: the one-node Slurm cluster and the
# installed venvs are built once per run, not once per worker.
SITE_FIXTURES = ('slurm', 'installed_kit')
# `make test` exports when it started and its budget: the run fails, after the durations list,
# when it took longer (issue #24: the suite keeps its own time).
STARTED, BUDGET_S = os.environ.get('TEST_STARTED'), os.environ.get('TEST_BUDGET_S')


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if set(SITE_FIXTURES) & set(getattr(item, 'fixturenames', ())):
            item.add_marker(pytest.mark.xdist_group('site'))


def over_budget():
    """How far past TEST_BUDGET_S the run is, in seconds; None within it or without a budget."""
    if not (STARTED and BUDGET_S):
        return None
    import time
    over = time.time() - int(STARTED) - int(BUDGET_S)
    return over if over > 0 else None


def pytest_sessionfinish(session):
    if not hasattr(session.config, 'workerinput') and over_budget():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)   # after the durations list
def pytest_terminal_summary(terminalreporter, config):
    over = over_budget()
    if over and not hasattr(config, 'workerinput'):
        terminalreporter.write_line('FAILED: make test ran %.0f s past its budget of %s s (TEST_BUDGET_S); the '
                                    'slowest tests are listed above' % (over, BUDGET_S), red=True)


def cached_build(script, *args):
    """Run a cached builder script under tests/ and return the path it prints last. One build at a
    time (the xdist workers share the cache): the second finds the first's result."""
    import fcntl
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, '.build.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        out = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', script), '--cache', CACHE] + list(args),
                             check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    return out.strip().splitlines()[-1]


@pytest.fixture(scope='session')
def data_dir():
    """The small AlphaFold data directory built from real data (cached across runs)."""
    return cached_build('build_test_dbs.py')


@pytest.fixture(scope='session')
def colabfold():
    """(folder to put on PYTHONPATH, mmseqs binary): ColabFold 1.6.2 and MMseqs2 18 (colabfold_tools)."""
    import colabfold_tools
    return colabfold_tools.install()


@pytest.fixture(scope='session')
def targets(data_dir):
    """name -> FASTA path: hbb_human (many homologs), e2_dbd (a real template, 1A7G), conotoxin."""
    d = os.path.join(data_dir, 'targets')
    return {os.path.splitext(f)[0]: os.path.join(d, f) for f in os.listdir(d)}


def run_kit(*args, env=None, timeout=600, **kw):
    """Run `python -m fold_runtime ARGS`; returns the CompletedProcess (stdout+stderr as text)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, '-m', 'fold_runtime'] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, env=full_env, timeout=timeout, cwd=ROOT, **kw)


def run_data(*args, env=None):
    """Run `python -m data_sync ARGS` with no site config; stdout+stderr as text."""
    return subprocess.run([sys.executable, '-m', 'data_sync'] + [str(a) for a in args], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=dict(os.environ, ALPHAFOLD_SITE_CONFIG='', **(env or {})))


@pytest.fixture
def kit():
    return run_kit


@pytest.fixture(scope='session')
def weights_dir():
    """STAND-IN for AlphaFold's weights: random monomer_ptm parameters in the official format."""
    return cached_build('make_test_weights.py')


def with_params(data_dir, weights, root):
    """root: the test databases (symlinked) with a stand-in weights directory's params/."""
    for name in os.listdir(data_dir):
        os.symlink(os.path.join(data_dir, name), str(root / name))
    os.symlink(os.path.join(weights, 'params'), str(root / 'params'))
    return str(root)


@pytest.fixture(scope='session')
def full_data_dir(data_dir, weights_dir, tmp_path_factory):
    """A data directory with the test databases and the stand-in weights under params/."""
    return with_params(data_dir, weights_dir, tmp_path_factory.mktemp('full_data'))


@pytest.fixture(scope='session')
def multimer_weights_dir():
    """STAND-IN for AlphaFold-Multimer v3's weights: random, in the official (fused) format."""
    return cached_build('make_test_weights.py', '--preset', 'multimer', '--models', 'model_1_multimer_v3')


@pytest.fixture(scope='session')
def multimer_data_dir(data_dir, multimer_weights_dir, tmp_path_factory):
    """The test databases (UniProt and pdb_seqres included) with the stand-in multimer weights."""
    return with_params(data_dir, multimer_weights_dir, tmp_path_factory.mktemp('multimer_data'))


@pytest.fixture(scope='session')
def conotoxin_features(data_dir, targets, tmp_path_factory):
    """The CPU stage's output for the conotoxin: OUT/conotoxin/features.pkl and its meta."""
    out = tmp_path_factory.mktemp('cpu_stage')
    res = run_kit('msa', '--fasta', targets['conotoxin'], '--output-dir', out, '--data-dir', data_dir)
    assert res.returncode == 0, res.stdout
    return str(out / 'conotoxin')


@pytest.fixture(scope='session')
def conotoxin_predicted(conotoxin_features, weights_dir, tmp_path_factory):
    """One alphafold-predict of the conotoxin with GPU_ARGS (seed 0, the best model relaxed), made
    once for the tests that read its outputs: (OUT/conotoxin, the command's log). Read-only: a test
    that runs predict on it takes a copy (predicted_dir)."""
    import shutil
    out = tmp_path_factory.mktemp('predicted')
    shutil.copytree(conotoxin_features, str(out / 'conotoxin'))
    res = run_kit('predict', '--target-dir', out / 'conotoxin', '--data-dir', weights_dir, *GPU_ARGS)
    assert res.returncode == 0, res.stdout
    return out / 'conotoxin', res.stdout


@pytest.fixture(scope='session')
def conotoxin_recycled(conotoxin_features, weights_dir, tmp_path_factory):
    """The conotoxin predicted with RECYCLE_ARGS (one recycle, seed 0, the best model relaxed), for
    the tests that compare predictions: OUT/conotoxin. Read-only."""
    import shutil
    out = tmp_path_factory.mktemp('recycled')
    shutil.copytree(conotoxin_features, str(out / 'conotoxin'))
    res = run_kit('predict', '--target-dir', out / 'conotoxin', '--data-dir', weights_dir, *RECYCLE_ARGS)
    assert res.returncode == 0, res.stdout
    return out / 'conotoxin'


@pytest.fixture
def predicted_dir(conotoxin_predicted, tmp_path):
    """A private copy of the shared conotoxin prediction, as OUT/conotoxin (times kept)."""
    import shutil
    dst = tmp_path / 'out' / 'conotoxin'
    shutil.copytree(str(conotoxin_predicted[0]), str(dst))
    return dst


@pytest.fixture
def conotoxin_dir(conotoxin_features, tmp_path):
    """A private copy of the conotoxin's CPU-stage output, as OUT/conotoxin."""
    import shutil
    dst = tmp_path / 'out' / 'conotoxin'
    shutil.copytree(conotoxin_features, str(dst))
    return dst


@pytest.fixture(scope='session')
def kit_site(full_data_dir, tmp_path_factory):
    """A site with a versioned shared copy (current -> versions/v1) of the test data, and a
    node-local root: the layout data_sync maintains."""
    root = tmp_path_factory.mktemp('site')
    version = root / 'shared' / 'versions' / 'v1'
    version.mkdir(parents=True)
    for name in os.listdir(full_data_dir):
        os.symlink(os.path.realpath(os.path.join(full_data_dir, name)), str(version / name))
    (version / 'manifest.id').write_text('v1\n')
    os.symlink('versions/v1', str(root / 'shared' / 'current'))
    (root / 'local').mkdir()
    conf = root / 'site.conf'
    conf.write_text('[data]\nshared_root = %s\nlocal_root = %s\n[memory]\nmode = auto\nunified_threshold = 1000\n'
                    '[cache]\njax_cache = %s\n' % (root / 'shared', root / 'local', os.environ['ALPHAFOLD_JAX_CACHE_DIR']))
    return root


@pytest.fixture(scope='session')
def installed_kit(kit_site, tmp_path_factory):
    """`make install METHOD=venv VARIANT=cpu` into a temporary prefix, with the test site config:
    a fresh venv of the cpu variant's lock with DeepMind's AlphaFold at its revision, from the
    sha256-checked archives (ALPHAFOLD_SOURCE)."""
    prefix = tmp_path_factory.mktemp('prefix')
    subprocess.run(['make', '-s', 'install', 'PREFIX=%s' % prefix, 'METHOD=venv', 'VARIANT=cpu',
                    'SITE_CONFIG=%s' % (kit_site / 'site.conf'), 'ALPHAFOLD_SOURCE=%s' % ARCHIVES], cwd=ROOT, check=True)
    return prefix


@pytest.fixture(scope='session')
def slurm(tmp_path_factory):
    """A real one-node Slurm cluster (tests/slurm_cluster.py), started once per session."""
    from slurm_cluster import SlurmCluster
    cluster = SlurmCluster(tmp_path_factory.mktemp('slurm'))
    yield cluster
    cluster.stop()


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mount small tmpfs file systems (read-only or full disks) under tmp_path; unmounted after."""
    mounted = []

    def mount(options):
        point = tmp_path / ('mnt%d' % len(mounted))
        point.mkdir()
        subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(point)], check=True)
        mounted.append(point)
        return point
    yield mount
    for point in mounted:
        subprocess.run(['umount', str(point)], check=True)
