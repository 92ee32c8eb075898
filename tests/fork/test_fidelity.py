"""DeepMind v2.3.2 semantics on ColabFold's fork (fold_runtime.compat.fidelity), piece by piece.
The end-to-end parity tests are tests/integration/test_msa_parity.py and test_predict_parity.py."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from test_patches import DEEPMIND_PYTHON
from fold_runtime.compat import confidence as kit_confidence, fidelity, patches, runners
from fold_runtime.cpu_stage import binaries
from kit_common.errors import KitError

MMCIF_WITH_MSE = '/usr/share/doc/python-biopython-doc/Tests/PDB/1A8O.cif.gz'   # HIV capsid domain, SeMet


def test_selenomethionine_becomes_methionine_in_template_sequences():
    """In fresh interpreters: fidelity patches modules, and mmcif_parsing caches its parses."""
    code = ('import gzip, sys\n'
            'from fold_runtime.compat import fidelity\n'
            'if sys.argv[1:] == ["deepmind"]: fidelity.apply_data()\n'
            'from alphafold.data import mmcif_parsing\n'
            'text = gzip.open(%r, "rt").read()\n'
            'print(mmcif_parsing.parse(file_id="1a8o", mmcif_string=text).mmcif_object.chain_to_seqres["A"])'
            % MMCIF_WITH_MSE)
    fork = subprocess.run([sys.executable, '-c', code], cwd=ROOT, stdout=subprocess.PIPE, universal_newlines=True)
    deepmind = subprocess.run([sys.executable, '-c', code, 'deepmind'], cwd=ROOT, stdout=subprocess.PIPE,
                              universal_newlines=True)
    fork_seq, deepmind_seq = fork.stdout.split()[-1], deepmind.stdout.split()[-1]
    assert fork_seq.startswith('XDIRQ') and deepmind_seq.startswith('MDIRQ')
    assert deepmind_seq.count('X') == 0 and fork_seq.count('X') == 4
    assert [i for i, (a, b) in enumerate(zip(fork_seq, deepmind_seq)) if a != b] == [i for i, c in enumerate(fork_seq)
                                                                                     if c == 'X']


def msa(sequences, descriptions=None):
    from alphafold.data import parsers
    return parsers.Msa(sequences, [[0] * len(sequences[0])] * len(sequences),
                       descriptions or ['s%d' % i for i in range(len(sequences))])


def test_msa_features_keep_each_aligned_sequence_once_at_its_first_occurrence():
    feats = fidelity.make_msa_features([msa(['MKV', 'MRV', 'MKV']), msa(['MKV', 'AAA', 'MRV'])])
    from alphafold.common import residue_constants
    rows = [''.join(residue_constants.ID_TO_HHBLITS_AA[i] for i in r) for r in feats['msa']]
    assert rows == ['MKV', 'MRV', 'AAA']
    assert list(feats['num_alignments']) == [3, 3, 3] and feats['deletion_matrix_int'].shape == (3, 3)
    assert feats['msa'].dtype == np.int32 and feats['msa_species_identifiers'].dtype == object


class Hit(object):
    def __init__(self, hit_sequence, aligned_cols):
        self.hit_sequence, self.aligned_cols = hit_sequence, aligned_cols


@pytest.mark.parametrize('hit, error', [
    (Hit('MKVLAAGIVAL', 1), 'AlignRatioError'),                     # 1 of 20 columns aligned
    (Hit('MKVLAAGIVALLGAAVSEAA', 20), 'DuplicateError'),             # the query itself
    (Hit('KVLAAGIVALLGAAVSEAA', 19), None),                          # a subsequence of exactly 95%: kept
    (Hit('MKVLAAGIV', 9), 'LengthError'),                            # under 10 residues
    (Hit('MKVLAAGIVALLGAAVSE', 18), None),                           # 90%: kept
    (Hit('MKVLAAGIVALLGAAVSEAW', 20), None),                         # not a subsequence: kept
])
def test_template_prefilter_is_deepmind_s(hit, error):
    import datetime
    from alphafold.data import templates
    query = 'MKVLAAGIVALLGAAVSEAA'
    call = lambda: fidelity.assess_hhsearch_hit(hit, '1abc', query, {}, datetime.datetime(2100, 1, 1),
                                                max_subsequence_ratio=1.0)   # what the fork's caller passes
    if error is None:
        assert call() is True
    else:
        with pytest.raises(getattr(templates, error)):
            call()


def test_confidences_follow_deepmind_s_formulas():
    from alphafold.common import confidence
    rng = np.random.RandomState(0)
    logits = {'lddt': rng.normal(size=(30, 50)).astype(np.float32), 'pae': rng.normal(size=(30, 30, 64)).astype(np.float32)}
    breaks = np.linspace(0., 31., 63)
    metrics = kit_confidence.confidence_metrics({'predicted_lddt': {'logits': logits['lddt']},
                                               'predicted_aligned_error': {'logits': logits['pae'], 'breaks': breaks}})
    np.testing.assert_allclose(metrics['plddt'], confidence.compute_plddt(logits['lddt']), rtol=1e-5)
    assert abs(metrics['ptm'] - confidence.predicted_tm_score(logits['pae'], breaks)) < 1e-6
    assert metrics['ranking_confidence'] == pytest.approx(np.mean(metrics['plddt']))
    assert metrics['aligned_confidence_probs'].shape == (30, 30, 64)
    fork = confidence.compute_predicted_aligned_error(logits['pae'], breaks)
    np.testing.assert_allclose(metrics['predicted_aligned_error'], fork['predicted_aligned_error'], rtol=1e-6)
    assert metrics['max_predicted_aligned_error'] == fork['max_predicted_aligned_error'] == 31.75


def test_pae_bin_centres_are_deepmind_s():
    """Golden: the middles of the 0.5 A bins, and one step past the last (DeepMind's max PAE, 31.75)."""
    centres = kit_confidence.bin_centers(np.linspace(0., 31., 63))
    np.testing.assert_array_equal(centres, np.arange(64) * 0.5 + 0.25)
    assert centres[-1] == 31.75


def test_residue_table_is_deepmind_s():
    """Golden letters, and the whole table equal to DeepMind's (a4315dd's residue_constants)."""
    from fold_runtime.compat.ccd_letters import CCD_NAME_TO_ONE_LETTER as table
    golden = {'MSE': 'M', 'PCA': 'E', 'SEC': 'A', 'ASX': 'B', 'GLX': 'Z', 'DAL': 'A', 'DLY': 'K', 'DCY': 'C',
              'UNK': 'X', 'ALA': 'A'}
    assert {code: table[code] for code in golden} == golden and 'PYL' not in table
    deepmind = subprocess.run([DEEPMIND_PYTHON, '-c', 'from alphafold.common import residue_constants as r; '
                               'print(repr(sorted(r.CCD_NAME_TO_ONE_LETTER.items())))'],
                              stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    assert deepmind.strip() == repr(sorted(table.items()))


def test_model_config_is_float32_and_unfused():
    from alphafold.model import config
    cfg = fidelity.model_config(config.model_config('model_1_ptm'))
    assert cfg.model.global_config.bfloat16 is False
    fused = _values(cfg, 'fuse_projection_weights')
    assert len(fused) >= 2 and set(fused) == {False}   # the Evoformer's and the template stack's


def _values(cfg, name):
    values = []
    for key in fidelity._keys_named(cfg.to_dict(), name):
        node = cfg
        for part in key.split('.'):
            node = node[part]
        values.append(node)
    return values


@pytest.mark.parametrize('model, fused', [('model_1_multimer_v3', True), ('model_2_multimer_v2', False),
                                          ('model_3_multimer', False)])
def test_multimer_config_is_deepmind_s(model, fused):
    """Every version recycles up to 20 times with tolerance 0.5 (the fork: 3 and 0 for v1/v2), in
    bfloat16 without the fork's kernels; only v3's triangle multiplications are fused."""
    from alphafold.model import config
    cfg = fidelity.model_config(config.model_config(model), model)
    assert (cfg.model.num_recycle, cfg.model.recycle_early_stop_tolerance) == (20, 0.5)
    gc = cfg.model.global_config
    assert gc.bfloat16 is True and gc.half_dtype == 'bfloat16' and not (gc.use_pallas or gc.fp8)
    assert set(_values(cfg, 'fuse_projection_weights')) == {fused}


class Steps(object):
    """A recycling pass with a scripted C-alpha change per pass, recording the keys it gets."""

    def __init__(self, changes):
        self.changes, self.keys = list(changes), []

    def __call__(self, key, prev):
        self.keys.append(np.asarray(key))
        return {'pass': len(self.keys)}, prev + 1, self.changes[len(self.keys) - 1]


@pytest.mark.parametrize('changes, num_recycle, passes', [
    ([5.0, 0.4, 9, 9], 20, 3),     # below the tolerance after pass 2: one more pass (the fork stops at 2)
    ([5.0, 0.5, 9, 9], 20, 3),     # equal to it stops too (DeepMind continues only while change > tolerance)
    ([0.1, 9, 9], 20, 2),          # the first pass's change counts as well
    ([9, 9, 9, 9, 9], 3, 4),       # never converging: num_recycle recycles, then the final pass
    ([9], 0, 1),                   # no recycling: one pass
])
def test_recycle_loop_follows_deepmind_s_stopping_rule(changes, num_recycle, passes):
    import jax
    steps = Steps(changes)
    result, recycles = runners.recycle_loop(steps, jax.random.PRNGKey(7), 0, num_recycle, 0.5, True)
    assert (len(steps.keys), recycles, result['pass']) == (passes, passes - 1, passes)


def test_recycle_loop_keys_are_deepmind_s_safe_key_chain():
    """Loop pass i gets the second half of the i-th split of the carried key, the final pass the
    carried key itself (SafeKey.split in recycle_body, then apply_network(prev, safe_key)); without
    MSA resampling every pass gets the same key (SafeKey.duplicate)."""
    import jax
    key = jax.random.PRNGKey(3)
    steps = Steps([9, 9, 9])
    runners.recycle_loop(steps, key, 0, 2, 0.5, True)
    carry, expected = key, []
    for _ in range(2):
        carry, pass_key = jax.random.split(carry)
        expected.append(pass_key)
    expected.append(carry)
    np.testing.assert_array_equal(np.array(steps.keys), np.array(expected))
    assert len({k.tobytes() for k in steps.keys}) == 3
    same = Steps([9, 9, 9])
    runners.recycle_loop(same, key, 0, 2, 0.5, False)
    assert all((k == np.asarray(key)).all() for k in same.keys)


def test_multimer_confidences_rank_by_iptm_and_ptm_on_0_to_1():
    """pTM, ipTM as the fork's confidence module computes them; the ranking 0.8 * ipTM + 0.2 * pTM,
    where the fork ranks by 80 * ipTM + 20 * pTM."""
    from alphafold.common import confidence
    rng = np.random.RandomState(1)
    pae = rng.normal(size=(20, 20, 64)).astype(np.float32)
    asym_id = np.array([1] * 12 + [2] * 8)
    breaks = np.linspace(0., 31., 63)
    metrics = kit_confidence.confidence_metrics({'predicted_lddt': {'logits': rng.normal(size=(20, 50))},
                                               'predicted_aligned_error': {'logits': pae, 'breaks': breaks}}, asym_id)
    assert abs(metrics['ptm'] - confidence.predicted_tm_score(pae, breaks)) < 1e-6
    assert abs(metrics['iptm'] - confidence.predicted_tm_score(pae, breaks, asym_id=asym_id)) < 1e-6
    assert metrics['iptm'] != pytest.approx(metrics['ptm'])
    assert metrics['ranking_confidence'] == pytest.approx(0.8 * metrics['iptm'] + 0.2 * metrics['ptm'])
    fork = confidence.get_confidence_metrics({'predicted_lddt': {'logits': rng.normal(size=(20, 50))},
                                              'predicted_aligned_error': {'logits': pae, 'breaks': breaks,
                                                                          'asym_id': asym_id}},
                                             mask=np.ones(20), rank_by='multimer')
    assert fork['ranking_confidence'] == pytest.approx(100 * metrics['ranking_confidence'], rel=1e-5)


def test_kalign_is_2_04_and_kalign_3_is_refused():
    path = binaries.resolve('kalign')
    assert binaries.version(path) == '2.04'
    kalign3 = '/usr/bin/kalign'
    assert binaries.version(kalign3).startswith('3.')
    with pytest.raises(KitError) as err:
        binaries.resolve('kalign', kalign3)
    assert 'kalign 3.' in str(err.value) and 'colabfold-binaries' in err.value.fix


def test_explain_lists_every_change_and_the_semantics():
    res = subprocess.run([sys.executable, '-m', 'fold_runtime', 'msa', '--explain'], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 0, res.stdout
    assert 'alphafold-colabfold' in res.stdout and 'deepmind-v2.3.2' in res.stdout
    for where, _ in fidelity.CHANGES:
        assert where in res.stdout
    for patch in patches.PATCHES:
        assert '%s.%s (%s stage) -> %s' % (patch.module, patch.attribute, patch.stage,
                                            patch.replacement.replace(':', '.')) in res.stdout
    assert 'model.recycle_early_stop_tolerance = 0.5' in res.stdout
