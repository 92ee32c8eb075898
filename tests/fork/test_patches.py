"""Each of the kit's patches to the fork takes effect: the fork's own modules, probed in fresh
interpreters (tests/fork/patch_probes.py) with and without the patches, against golden values and
DeepMind's stack (DEEPMIND_PYTHON)."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

DEEPMIND_PYTHON = os.environ.get('DEEPMIND_PYTHON', os.path.join(ROOT, '.venv', 'bin', 'python'))
PROBES = ('legacy_keys', 'template_sequence', 'attention_softmax', 'structure_module_precision', 'relax_tolerance')
# jax.random.split(PRNGKey(0)) with jax's original (non-partitionable) threefry keys.
LEGACY_SPLIT = [[4146024105, 967050713], [2718843009, 1272950319]]
# The renamed 1A8O's chain A read with DeepMind's table: MSE M, PCA E, DAL A, SEC A, ASX B, GLX Z, DLY K.
DEEPMIND_SEQUENCE = 'MBIREGPKZPFRBYVBRFYKTLRAZEASEZVKNWMTZTLLVENANPBAKTILKALGPGATLZZMMTAAEG'


def probe(python, *args):
    res = subprocess.run([python, os.path.join(ROOT, 'tests', 'fork', 'patch_probes.py')] + list(args), cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])


@pytest.fixture(scope='module')
def patched():
    return probe(sys.executable, '--patched', *PROBES)


@pytest.fixture(scope='module')
def fork():
    return probe(sys.executable, *PROBES)


def test_random_keys_are_deepmind_s_legacy_threefry_keys(patched, fork):
    assert patched['legacy_keys'] == LEGACY_SPLIT
    assert fork['legacy_keys'] != LEGACY_SPLIT   # the fork's jax defaults to partitionable keys


def test_template_residues_get_deepmind_s_letters(patched, fork):
    assert patched['template_sequence'] == DEEPMIND_SEQUENCE
    assert probe(DEEPMIND_PYTHON, 'template_sequence')['template_sequence'] == DEEPMIND_SEQUENCE
    assert fork['template_sequence'].count('X') > 30


def test_attention_softmax_runs_in_float32(patched, fork):
    assert patched['attention_softmax']['float32'] == 0 < patched['attention_softmax']['bfloat16']
    assert fork['attention_softmax']['bfloat16'] == 0 < fork['attention_softmax']['float32']


def test_multimer_structure_module_runs_at_default_precision(patched, fork):
    assert (patched['structure_module_precision'], fork['structure_module_precision']) == ('default', 'HIGHEST')


def test_relax_force_tolerance_is_per_nm(patched, fork):
    """2.39 kcal/mol/nm = 9.99976 kJ/mol/nm, what DeepMind's a4315dd gives OpenMM 8; the fork 10 times that."""
    assert patched['relax_tolerance'] == pytest.approx(2.39 * 4.184)
    assert fork['relax_tolerance'] == pytest.approx(2.39 * 41.84)
