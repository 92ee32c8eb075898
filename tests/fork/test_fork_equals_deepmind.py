"""ColabFold's fork with the kit's fidelity patches gives the features DeepMind's own code gives:
the kit's CPU stage run on both stacks, array for array. This venv has the fork; DeepMind's stack
is the development venv (the Makefile's DEEPMIND_PYTHON), run as a subprocess. e2_dbd's templates
include 2XHE and 9MOD, its copy with PCA, SEC, DAL and MSE residues (tests/build_test_dbs.py), so
the residue table, the realignment it triggers and DeepMind's letters are compared too."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

DEEPMIND_PYTHON = os.environ.get('DEEPMIND_PYTHON', os.path.join(ROOT, '.venv', 'bin', 'python'))


def cpu_stage(python, fasta, out, data_dir, preset, model_preset='monomer'):
    res = subprocess.run([python, '-m', 'fold_runtime', 'msa', '--fasta', fasta, '--output-dir', str(out),
                          '--data-dir', data_dir, '--db-preset', preset, '--model-preset', model_preset,
                          '--cpus', '2'], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:]
    name = os.path.splitext(os.path.basename(fasta))[0]
    with open(os.path.join(str(out), name, 'features.pkl'), 'rb') as f:
        return pickle.load(f)


def distribution(python):
    return subprocess.run([python, '-c', 'import fold_runtime; print(*fold_runtime.distribution())'],
                          stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.split()


# The modified template (tests/build_test_dbs.py MODIFIED_ENTRY), the real chain it copies and the
# target that hits both.
MODIFIED, ORIGINAL, TEMPLATE_TARGET = b'9mod_A', b'2xhe_A', 'hbb_human'
# What DeepMind's code reads at its renamed residues (positions 324, 326, 329, 330 and 341 of the
# stretch the target aligns, 321-344), by Biopython 1.79's SCOPData: DAL A, SEC A, PCA E, MSE M.
ORIGINAL_STRETCH, DEEPMIND_STRETCH = 'EGGAGALKQMLKDLPQHREQMQKY', 'EGGAGALKEMLKDLPQHREQMQKY'
# template_aatype's classes (residue_constants.HHBLITS_AA_TO_ID), one letter each.
HHBLITS_LETTERS = 'ACDEFGHIKLMNPQRSTVWYX-'


@pytest.fixture(scope='module')
def features(data_dir, targets, tmp_path_factory):
    """(target, preset, model preset) -> (the fork's features, DeepMind's), each made once per module."""
    made = {}

    def made_by_both(target, preset, model_preset='monomer'):
        key = (target, preset, model_preset)
        if key not in made:
            out = tmp_path_factory.mktemp('-'.join(key))
            made[key] = tuple(cpu_stage(python, targets[target], out / side, data_dir, preset, model_preset)
                              for side, python in (('fork', sys.executable), ('deepmind', DEEPMIND_PYTHON)))
        return made[key]
    return made_by_both


@pytest.mark.parametrize('target, preset, model_preset', [
    ('e2_dbd', 'full_dbs', 'monomer'), ('e2_dbd', 'reduced_dbs', 'monomer'), (TEMPLATE_TARGET, 'full_dbs', 'monomer'),
    ('pim1_epha2', 'reduced_dbs', 'multimer')])
def test_fork_with_the_kit_s_patches_gives_deepmind_s_features(features, target, preset, model_preset):
    """e2_dbd's templates (its own 1A7G is refused as a near-duplicate) and MSAs, and hbb_human's,
    which include the template with modified residues: the prefilter, the residue table, kalign's
    realignment and the MSA deduplication are all compared; and a heterodimer's (hmmsearch's
    templates, UniProt pairing by species, DeepMind's merging)."""
    assert distribution(sys.executable)[0] == 'alphafold-colabfold'
    assert distribution(DEEPMIND_PYTHON) == ['alphafold', '2.3.2']
    fork, deepmind = features(target, preset, model_preset)
    assert sorted(fork) == sorted(deepmind)
    assert deepmind['template_aatype'].shape[0] > 0
    if target == TEMPLATE_TARGET:
        assert MODIFIED in list(deepmind['template_domain_names'])
    for key in deepmind:
        a, b = np.asarray(fork[key]), np.asarray(deepmind[key])
        assert (a.dtype, a.shape) == (b.dtype, b.shape), key
        assert np.array_equal(a, b), key


def template_letters(feats, name):
    """The template's row of template_aatype as letters, one per query residue ('-': none)."""
    row = list(feats['template_domain_names']).index(name)
    return ''.join(HHBLITS_LETTERS[i] for i in np.argmax(feats['template_aatype'][row], axis=-1))


def test_modified_template_residues_have_deepmind_s_letters(features):
    """Golden: the modified template's row of template_aatype is the original's with DeepMind's
    letters at the renamed residues (only PCA reads other than its parent, Q -> E), on DeepMind's code
    and on the patched fork alike."""
    for feats in features(TEMPLATE_TARGET, 'full_dbs'):
        original, modified = template_letters(feats, ORIGINAL), template_letters(feats, MODIFIED)
        assert ORIGINAL_STRETCH in original.replace('-', '')
        assert modified == original.replace(ORIGINAL_STRETCH, DEEPMIND_STRETCH)
