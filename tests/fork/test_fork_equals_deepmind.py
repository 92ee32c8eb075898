"""ColabFold's fork with the kit's fidelity patches gives the features DeepMind's own code gives:
the kit's CPU stage run on both stacks, array for array. This venv has the fork; DeepMind's stack
is the development venv (the Makefile's DEEPMIND_PYTHON), run as a subprocess."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

DEEPMIND_PYTHON = os.environ.get('DEEPMIND_PYTHON', os.path.join(ROOT, '.venv', 'bin', 'python'))


def cpu_stage(python, fasta, out, data_dir, preset):
    res = subprocess.run([python, '-m', 'fold_runtime', 'msa', '--fasta', fasta, '--output-dir', str(out),
                          '--data-dir', data_dir, '--db-preset', preset, '--cpus', '2'], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:]
    name = os.path.splitext(os.path.basename(fasta))[0]
    with open(os.path.join(str(out), name, 'features.pkl'), 'rb') as f:
        return pickle.load(f)


def distribution(python):
    return subprocess.run([python, '-c', 'import fold_runtime; print(*fold_runtime.distribution())'],
                          stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.split()


@pytest.mark.parametrize('preset', ['full_dbs', 'reduced_dbs'])
def test_fork_with_the_kit_s_patches_gives_deepmind_s_features(data_dir, targets, tmp_path, preset):
    """e2_dbd has a real template (1A7G), so templates, kalign's realignment and the MSA
    deduplication are all compared."""
    assert distribution(sys.executable)[0] == 'alphafold-colabfold'
    assert distribution(DEEPMIND_PYTHON) == ['alphafold', '2.3.2']
    fork = cpu_stage(sys.executable, targets['e2_dbd'], tmp_path / 'fork', data_dir, preset)
    deepmind = cpu_stage(DEEPMIND_PYTHON, targets['e2_dbd'], tmp_path / 'deepmind', data_dir, preset)
    assert sorted(fork) == sorted(deepmind)
    assert fork['template_aatype'].shape[0] > 0
    for key in deepmind:
        a, b = np.asarray(fork[key]), np.asarray(deepmind[key])
        assert (a.dtype, a.shape) == (b.dtype, b.shape), key
        assert np.array_equal(a, b), key
