"""Memory modes: the XLA settings are in force before jax initialises; user exports win."""
import json
import os
import subprocess
import sys

from conftest import ROOT

# A child process applies the policy, then starts jax and reports the environment XLA read.
CHILD = '''
import json, os, sys
from fold_runtime.gpu_stage import memory
memory.apply(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if sys.argv[3] != '-' else None)
import jax
jax.devices()   # the backend reads XLA_* / TF_* when it initialises
print(json.dumps({k: os.environ.get(k) for k in memory.VARIABLES}))
'''


def xla_sees(mode, length, fraction='-', **env):
    clean = {k: v for k, v in os.environ.items() if k not in ('TF_FORCE_UNIFIED_MEMORY',
             'XLA_PYTHON_CLIENT_MEM_FRACTION', 'XLA_PYTHON_CLIENT_ALLOCATOR')}
    out = subprocess.run([sys.executable, '-c', CHILD, mode, str(length), fraction], cwd=ROOT,
                         env=dict(clean, **env), check=True, stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_unified_is_the_bfc_allocator_with_unified_memory_and_a_fraction():
    """As run_docker.py: the platform allocator would turn unified memory off, so it is never set."""
    assert xla_sees('unified', 100) == {'TF_FORCE_UNIFIED_MEMORY': '1',
                                        'XLA_PYTHON_CLIENT_MEM_FRACTION': '4.0',
                                        'XLA_PYTHON_CLIENT_ALLOCATOR': None}
    assert xla_sees('unified', 100, '2.0')['XLA_PYTHON_CLIENT_MEM_FRACTION'] == '2.0'


def test_auto_switches_at_the_length_threshold():
    assert xla_sees('auto', 1201)['TF_FORCE_UNIFIED_MEMORY'] == '1'
    assert xla_sees('auto', 1200) == {k: None for k in ('TF_FORCE_UNIFIED_MEMORY',
                                      'XLA_PYTHON_CLIENT_MEM_FRACTION', 'XLA_PYTHON_CLIENT_ALLOCATOR')}


def test_the_platform_allocator_is_refused_with_unified_memory():
    code = 'from fold_runtime.gpu_stage import memory; memory.apply("unified", 10)'
    res = subprocess.run([sys.executable, '-c', code], cwd=ROOT, stderr=subprocess.PIPE, universal_newlines=True,
                         env=dict(os.environ, XLA_PYTHON_CLIENT_ALLOCATOR='platform'))
    assert res.returncode != 0 and 'turns unified memory off' in res.stderr


def test_user_export_wins():
    seen = xla_sees('unified', 100, XLA_PYTHON_CLIENT_MEM_FRACTION='0.5')
    assert seen['XLA_PYTHON_CLIENT_MEM_FRACTION'] == '0.5'
    assert seen['TF_FORCE_UNIFIED_MEMORY'] == '1'


def test_applying_after_jax_started_is_refused():
    """After jax has started its backend (XLA has read the settings), not merely been imported
    (DeepMind's residue constants import it)."""
    started = 'import jax; jax.devices(); from fold_runtime.gpu_stage import memory; memory.apply("unified", 10)'
    res = subprocess.run([sys.executable, '-c', started], cwd=ROOT, stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert res.returncode != 0 and 'before jax starts a backend' in res.stderr
    imported = ('import jax, os; from fold_runtime.gpu_stage import memory; memory.apply("unified", 10); '
                'print(os.environ["TF_FORCE_UNIFIED_MEMORY"])')
    res = subprocess.run([sys.executable, '-c', imported], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True)
    assert res.returncode == 0 and res.stdout.strip() == '1', res.stderr


def test_predict_logs_the_chosen_mode(kit, weights_dir, targets, conotoxin_dir):
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, '--model-preset',
              'monomer_ptm', '--models', 'model_1', '--num-recycle', '0', '--models-to-relax', 'none',
              '--memory-mode', 'auto', '--unified-threshold', '20')
    assert res.returncode == 0, res.stdout
    assert 'memory mode unified (requested auto, longest protein 24 residues, threshold 20)' in res.stdout
    assert 'set TF_FORCE_UNIFIED_MEMORY=1' in res.stdout
