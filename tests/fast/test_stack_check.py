"""fold_runtime.stack_check passes on a working stack and fails, naming the part, on a broken one;
installer.stack's fixes of what AlphaFold's revisions need at install time."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from installer import sources, stack
from kit_common.errors import EXIT_FAILED, KitError


def stack_check(*args, env=None):
    return subprocess.run([sys.executable, '-m', 'fold_runtime.stack_check'] + list(args), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=dict(os.environ, **(env or {})))


def test_passes_on_the_development_stack():
    res = stack_check()
    assert res.returncode == 0, res.stdout
    assert res.stdout.count('\nOK   ') + res.stdout.startswith('OK   ') == 7, res.stdout


def test_fails_on_a_stack_whose_openmm_cannot_load(tmp_path):
    """A broken OpenMM (here shadowed by a package whose import fails, as a mismatched build does)
    still lets `import alphafold` work: the check must not."""
    (tmp_path / 'openmm').mkdir()
    (tmp_path / 'openmm' / '__init__.py').write_text('raise ImportError("libOpenMM.so: undefined symbol")\n')
    res = stack_check(env={'PYTHONPATH': str(tmp_path)})
    assert res.returncode == EXIT_FAILED, res.stdout          # a documented status, not the 2 failures
    assert 'FAIL imports alphafold.model.model, alphafold.relax.relax, alphafold.data.pipeline: ImportError: ' \
           'libOpenMM.so: undefined symbol' in res.stdout
    assert 'FAIL OpenMM starts' in res.stdout and 'OK   builds a model config' in res.stdout


def test_gpu_checks_fail_without_a_gpu():
    res = stack_check('--gpu')
    assert res.returncode == EXIT_FAILED, res.stdout
    assert 'FAIL jax starts and sees a GPU: RuntimeError: no GPU visible to jax (devices: ' in res.stdout
    assert 'FAIL OpenMM starts with its CUDA platform: RuntimeError: OpenMM has no CUDA platform' in res.stdout


# AlphaFold v2.0.1's residue_constants.py, the lines that matter.
V201 = '''"""Constants used in AlphaFold."""

import collections
import functools
from typing import List, Mapping, Tuple

def load_stereo_chemical_props():
  stereo_chemical_props_path = (
      'alphafold/common/stereo_chemical_props.txt')
  with open(stereo_chemical_props_path, 'rt') as f:
    stereo_chemical_props = f.read()
  return stereo_chemical_props
'''


def test_v2_0_stereo_path_is_anchored_to_the_package(tmp_path, monkeypatch):
    common = tmp_path / 'alphafold' / 'common'
    common.mkdir(parents=True)
    (common / 'residue_constants.py').write_text(V201)
    (common / 'stereo_chemical_props.txt').write_text('Bond\tResidue\n')
    assert stack.anchor_stereo_path(str(tmp_path / 'alphafold'))
    monkeypatch.chdir(tmp_path / 'alphafold' / 'common')      # anywhere but the package's parent
    namespace = {'__file__': str(common / 'residue_constants.py')}
    exec(compile((common / 'residue_constants.py').read_text(), 'residue_constants.py', 'exec'), namespace)
    assert namespace['load_stereo_chemical_props']() == 'Bond\tResidue\n'
    assert not stack.anchor_stereo_path(str(tmp_path / 'alphafold'))     # once only


def test_a_stereo_file_that_is_not_openstructure_s_is_refused(tmp_path, monkeypatch):
    """STEREO_SOURCE is checked against the pinned sha256: an error page, or the real table with
    one value changed, is refused; the installed table passes."""
    from alphafold.common import residue_constants
    real = os.path.join(os.path.dirname(residue_constants.__file__), sources.STEREO_FILE)
    with open(real, 'rb') as f:
        table = f.read()
    for bad in (b'<html>404 Not Found</html>', table.replace(b'1.520', b'1.521', 1)):
        (tmp_path / 'copy.txt').write_bytes(bad)
        monkeypatch.setenv('STEREO_SOURCE', str(tmp_path / 'copy.txt'))
        with pytest.raises(KitError) as err:
            sources.stereo_bytes()
        assert 'not OpenStructure 7102c63' in err.value.problem and 'STEREO_SOURCE' in err.value.fix
    monkeypatch.setenv('STEREO_SOURCE', real)
    assert sources.stereo_bytes() == table
