"""Bad input and faults in the GPU stage: a clear message and a distinct non-zero exit."""
import os

import pytest

from conftest import GPU_ARGS
from fold_runtime.gpu_stage.predict import out_of_memory_error

QUICK = ('--model-preset', 'monomer_ptm', '--models', 'model_1', '--num-recycle', '0')


def assert_failed(res, code, *words):
    assert res.returncode == code, res.stdout
    assert 'error:' in res.stdout and 'fix:' in res.stdout, res.stdout
    for word in words:
        assert word in res.stdout, (word, res.stdout)


def test_missing_weights_name_the_directory_and_who_installs_them(kit, conotoxin_dir, weights_dir, tmp_path):
    partial = tmp_path / 'data' / 'params'
    partial.mkdir(parents=True)
    (partial / 'params_model_1_ptm.npz').symlink_to(os.path.join(weights_dir, 'params', 'params_model_1_ptm.npz'))
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', tmp_path / 'data', *GPU_ARGS)
    assert_failed(res, 3, 'weights file missing in %s: %s' % (partial, partial / 'params_model_2_ptm.npz'),
                  "ask your site's AlphaFold admin to install the weights there")


def test_features_for_another_sequence_are_refused(kit, conotoxin_dir, weights_dir, tmp_path):
    other = tmp_path / 'conotoxin.fasta'
    other.write_text('>conotoxin\nHPPCCLYGKCRRYPGCSSASCCQRK\n')
    res = kit('predict', '--fasta', other, '--output-dir', conotoxin_dir.parent, '--data-dir', weights_dir, *QUICK)
    assert_failed(res, 6, 'sequence_sha256', '--overwrite')


def test_features_for_another_preset_are_refused(kit, conotoxin_dir, weights_dir):
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, '--db-preset', 'reduced_dbs', *QUICK)
    assert_failed(res, 6, "db_preset: existing 'full_dbs', now 'reduced_dbs'")


def test_swapped_features_file_is_refused(kit, conotoxin_dir, weights_dir, tmp_path, data_dir, targets):
    res = kit('msa', '--fasta', targets['e2_dbd'], '--output-dir', tmp_path / 'e2', '--data-dir', data_dir,
              '--db-preset', 'reduced_dbs')
    assert res.returncode == 0, res.stdout
    os.replace(str(tmp_path / 'e2' / 'e2_dbd' / 'features.pkl'), str(conotoxin_dir / 'features.pkl'))
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, *QUICK)
    assert_failed(res, 6, 'holds another sequence')


def test_corrupt_or_unmatched_features(kit, conotoxin_dir, weights_dir):
    pkl = conotoxin_dir / 'features.pkl'
    pkl.write_bytes(pkl.read_bytes()[:1000])
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, *QUICK)
    assert_failed(res, 6, 'features.pkl is unreadable', 'alphafold-msa --overwrite')
    (conotoxin_dir / 'features.meta.json').unlink()
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, *QUICK)
    assert_failed(res, 6, 'has no features.meta.json', 'run the CPU stage first')


def test_no_gpu_with_require_gpu(kit, conotoxin_dir, weights_dir):
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, '--require-gpu', *QUICK)
    assert_failed(res, 7, 'no GPU is visible', 'CUDA_VISIBLE_DEVICES')


def test_failed_relaxation_keeps_unrelaxed_outputs(kit, conotoxin_dir, weights_dir):
    """A real failure: OpenMM has no CUDA platform on this machine, so GPU relax fails."""
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, *QUICK, '--use-gpu-relax')
    assert_failed(res, 8, 'relaxation failed for model_1_ptm', '--no-gpu-relax')
    assert (conotoxin_dir / 'ranked_0.pdb').read_text() == (conotoxin_dir / 'unrelaxed_model_1_ptm.pdb').read_text()
    import json
    metrics = json.loads((conotoxin_dir / 'relax_metrics.json').read_text())
    assert 'Minimization failed' in metrics['model_1_ptm']['error']
    assert not list(conotoxin_dir.glob('relaxed_*.pdb'))


def test_out_of_memory_handler_suggests_unified_memory():
    """Injected error: XLA's out-of-memory text, as raised from a GPU (no GPU here to exhaust)."""
    exc = RuntimeError('RESOURCE_EXHAUSTED: Out of memory while trying to allocate 23.5GiB.')
    err = out_of_memory_error(exc)
    assert err is not None and err.exit_code == 7
    assert '--memory-mode unified' in err.fix and 'RESOURCE_EXHAUSTED' in err.problem
    assert out_of_memory_error(ValueError('shapes do not match')) is None


def test_features_made_under_other_semantics_are_refused(kit, conotoxin_dir, weights_dir):
    """A features.pkl made by the fork as it ships (or an older kit) is not DeepMind's: exit 6."""
    import json
    meta_path = conotoxin_dir / 'features.meta.json'
    meta = json.loads(meta_path.read_text())
    assert meta['semantics'] == 'deepmind-v2.3.2' and meta['alphafold_distribution'] == 'alphafold'
    meta['semantics'] = 'colabfold-2.3.27'
    meta_path.write_text(json.dumps(meta))
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, *QUICK)
    assert_failed(res, 6, "semantics: existing 'colabfold-2.3.27', now 'deepmind-v2.3.2'", 'alphafold-msa --overwrite')


@pytest.mark.parametrize('made_under', [('alphafold-colabfold', '2.3.27'), ('alphafold', '2.3.1')],
                         ids=['fork', 'other-version'])
def test_features_made_under_another_alphafold_are_refused_before_any_model(kit, conotoxin_dir, weights_dir,
                                                                             made_under):
    """features.meta.json says another AlphaFold (distribution or version) made the features: exit 6,
    naming both stacks and the rerun, before weights are loaded or any model runs."""
    import json
    from fold_runtime import distribution
    meta_path = conotoxin_dir / 'features.meta.json'
    meta = json.loads(meta_path.read_text())
    assert (meta['alphafold_distribution'], meta['alphafold_version']) == distribution() == ('alphafold', '2.3.2')
    meta.update(alphafold_distribution=made_under[0], alphafold_version=made_under[1])
    meta_path.write_text(json.dumps(meta))
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, *QUICK)
    assert_failed(res, 6, 'made under AlphaFold %s %s' % made_under, 'this job runs AlphaFold alphafold 2.3.2',
                  'rerun alphafold-msa --overwrite')
    assert 'Traceback' not in res.stdout and 'predicting with' not in res.stdout
    assert not [f for f in os.listdir(conotoxin_dir) if f.startswith(('unrelaxed_', 'prediction.meta'))]


def broken_weights(weights_dir, root, damage):
    """A params/ whose model_1_ptm file is a damaged copy of the stand-in weights."""
    import numpy as np
    params = root / 'params'
    params.mkdir(parents=True)
    (params / 'test_weights.json').write_bytes(open(os.path.join(weights_dir, 'params', 'test_weights.json'), 'rb').read())
    source = os.path.join(weights_dir, 'params', 'params_model_1_ptm.npz')
    target = params / 'params_model_1_ptm.npz'
    if damage == 'truncated':                      # a partly copied file
        target.write_bytes(open(source, 'rb').read()[:100000])
        return target
    arrays = dict(np.load(source))
    name = sorted(arrays)[5]
    if damage == 'object array':
        arrays[name] = np.array([object()] * 3, dtype=object)
    else:                                          # another model's shape
        arrays[name] = np.zeros(arrays[name].shape[:-1] + (arrays[name].shape[-1] + 1,), arrays[name].dtype)
    np.savez(str(target), **arrays)
    return target


@pytest.mark.parametrize('damage, words', [('object array', 'Object arrays cannot be loaded'),
                                           ('truncated', 'BadZipFile'), ('wrong shape', 'does not match shape')])
def test_damaged_weights_name_the_file_and_the_fix(kit, conotoxin_dir, weights_dir, tmp_path, damage, words):
    """Tracebacks before (ValueError, zipfile.BadZipFile, haiku's shape error at the first prediction)."""
    path = broken_weights(weights_dir, tmp_path / 'data', damage)
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', tmp_path / 'data', *QUICK)
    assert_failed(res, 3, 'weights file %s is damaged' % path, words, 'alphafold-data download --databases params')
    assert 'Traceback' not in res.stdout
