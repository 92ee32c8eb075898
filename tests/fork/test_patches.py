"""Each of the kit's patches to the fork takes effect: the fork's own modules, probed in fresh
interpreters (tests/fork/patch_probes.py) with and without the patches, against golden values and
DeepMind's stack (DEEPMIND_PYTHON)."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from fold_runtime.compat import fidelity, patches
from kit_common.errors import KitError

DEEPMIND_PYTHON = os.environ.get('DEEPMIND_PYTHON', os.path.join(ROOT, '.venv', 'bin', 'python'))
PROBES = ('legacy_keys', 'template_sequence', 'attention_softmax', 'structure_module_precision', 'relax_tolerance',
          'msa_rows', 'template_prefilter', 'outer_product_mean')
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


def test_msa_rows_are_kept_once(patched, fork):
    assert (patched['msa_rows'], fork['msa_rows']) == (3, 6)


def test_template_prefilter_rejects_near_duplicates_of_the_query(patched, fork):
    assert (patched['template_prefilter'], fork['template_prefilter']) == ('DuplicateError', 'kept')


def test_outer_product_mean_contracts_as_deepmind_s(patched, fork):
    assert (patched['outer_product_mean'], fork['outer_product_mean']) == ('deepmind', 'reassociated')


def test_every_patch_has_an_effect_test():
    """The probes above cover each row of the table (by the attribute they observe)."""
    observed = {'make_msa_features': 'msa_rows', '_assess_hhsearch_hit': 'template_prefilter',
                'PDBData': 'template_sequence', 'jax_threefry_partitionable': 'legacy_keys',
                'OPM_REASSOCIATE_ROWS': 'outer_product_mean', '_openmm_minimize': 'relax_tolerance',
                ('alphafold.model.modules', 'jax'): 'attention_softmax',
                ('alphafold.model.modules_multimer', 'jax'): 'structure_module_precision'}
    for patch in patches.PATCHES:
        assert observed.get(patch.attribute, observed.get((patch.module, patch.attribute))) in PROBES, patch


@pytest.mark.parametrize('patch', patches.PATCHES, ids=lambda p: '%s.%s' % (p.module, p.attribute))
def test_a_renamed_attribute_is_refused(monkeypatch, patch):
    monkeypatch.setattr(patches, '_resolve', lambda name: type('Renamed', (), {}))
    with pytest.raises(KitError) as err:
        patches._apply(patch, '2.3.27')
    assert '%s.%s' % (patch.module, patch.attribute) in err.value.problem and '2.3.27' in err.value.fix


def test_a_renamed_attribute_fails_the_cpu_stage_at_start_up(tmp_path):
    fasta = tmp_path / 't.fasta'
    fasta.write_text('>t\nMKVLAAGIVALLGAAVSEAA\n')
    code = ('import sys\nfrom alphafold.data import pipeline\ndel pipeline.make_msa_features\n'
            'from fold_runtime import cli\ncli.msa_main(sys.argv[1:])')
    res = subprocess.run([sys.executable, '-c', code, '--fasta', str(fasta), '--output-dir', str(tmp_path / 'out'),
                          '--data-dir', str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=300)
    assert res.returncode == 3, res.stdout
    assert 'has no alphafold.data.pipeline.make_msa_features' in res.stdout and 'Traceback' not in res.stdout


def test_a_config_key_the_fork_does_not_define_is_refused():
    from alphafold.model import config
    cfg = config.model_config('model_1_multimer_v3')
    del cfg.model['recycle_early_stop_tolerance']
    with pytest.raises(KitError) as err:
        fidelity.model_config(cfg, 'model_1_multimer_v3')
    assert 'model.recycle_early_stop_tolerance' in err.value.problem
    assert 'recycle_early_stop_tolerance' not in cfg.model   # nothing was added


def test_an_untested_fork_version_is_refused_unless_the_site_accepts_it(monkeypatch):
    monkeypatch.setattr(patches, 'distribution', lambda: (patches.FORK, '2.3.99'))
    monkeypatch.delenv(patches.ACCEPT_ENV, raising=False)
    with pytest.raises(KitError) as err:
        patches.apply('data')
    assert '2.3.99' in err.value.problem and '%s=2.3.99' % patches.ACCEPT_ENV in err.value.fix
    monkeypatch.setenv(patches.ACCEPT_ENV, '2.3.99')
    patches.check_version('2.3.99')
    monkeypatch.setenv(patches.ACCEPT_ENV, '2.3.98')
    with pytest.raises(KitError):
        patches.check_version('2.3.99')
