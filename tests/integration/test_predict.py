"""alphafold-predict and alphafold-run on CPU, with the STAND-IN random test weights."""
import json
import os
import pickle

from conftest import GPU_ARGS


def predict(kit, weights_dir, targets, out_dir, *extra):
    return kit('predict', '--fasta', targets['conotoxin'], '--output-dir', out_dir,
               '--data-dir', weights_dir, *GPU_ARGS, *extra)


def test_predict_writes_alphafold_outputs_and_relaxes_only_the_best(kit, weights_dir, targets, conotoxin_dir):
    res = predict(kit, weights_dir, targets, conotoxin_dir.parent)
    assert res.returncode == 0, res.stdout
    assert 'USING RANDOM TEST WEIGHTS' in res.stdout
    d = conotoxin_dir
    ranking = json.loads((d / 'ranking_debug.json').read_text())
    order = ranking['order']
    assert sorted(order) == ['model_1_ptm', 'model_3_ptm']
    assert ranking['plddts'][order[0]] >= ranking['plddts'][order[1]]
    # Exactly one relaxation: the best model's.
    metrics = json.loads((d / 'relax_metrics.json').read_text())
    assert list(metrics) == [order[0]]
    assert sorted(f for f in os.listdir(d) if f.startswith('relaxed_')) == ['relaxed_%s.pdb' % order[0]]
    assert (d / 'ranked_0.pdb').read_text() == (d / ('relaxed_%s.pdb' % order[0])).read_text()
    assert (d / 'ranked_1.pdb').read_text() == (d / ('unrelaxed_%s.pdb' % order[1])).read_text()
    for name in order:
        for f in ('unrelaxed_%s.pdb', 'result_%s.pkl', 'confidence_%s.json', 'pae_%s.json'):
            assert (d / (f % name)).exists(), f % name
        conf = json.loads((d / ('confidence_%s.json' % name)).read_text())
        assert len(conf['confidenceScore']) == 24 and conf['residueNumber'][-1] == 24
        pae = json.loads((d / ('pae_%s.json' % name)).read_text())
        assert len(pae[0]['predicted_aligned_error']) == 24
    with open(d / ('result_%s.pkl' % order[0]), 'rb') as f:
        assert pickle.load(f)['plddt'].shape == (24,)
    timings = json.loads((d / 'timings.json').read_text())
    assert timings['features'] > 0   # the CPU stage's, merged
    for name in order:
        for key in ('process_features_', 'predict_and_compile_', 'compile_', 'predict_'):
            assert key + name in timings
        assert abs(timings['compile_' + name] + timings['predict_' + name]
                   - timings['predict_and_compile_' + name]) < 0.01
    assert list(k for k in timings if k.startswith('relax_')) == ['relax_' + order[0]]
    assert not [f for f in os.listdir(d) if f.startswith('.tmp-')]


def test_relax_all_none_and_no_result_pkl(kit, weights_dir, targets, conotoxin_dir):
    res = predict(kit, weights_dir, targets, conotoxin_dir.parent, '--models-to-relax', 'all',
                  '--no-result-pkl')
    assert res.returncode == 0, res.stdout
    assert len(json.loads((conotoxin_dir / 'relax_metrics.json').read_text())) == 2
    assert not list(conotoxin_dir.glob('result_*.pkl'))
    for f in conotoxin_dir.glob('relaxed_*.pdb'):
        f.unlink()
    (conotoxin_dir / 'relax_metrics.json').unlink()
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, *GPU_ARGS,
              '--models-to-relax', 'none')
    assert res.returncode == 0, res.stdout
    assert not list(conotoxin_dir.glob('relaxed_*.pdb'))
    assert not (conotoxin_dir / 'relax_metrics.json').exists()
    order = json.loads((conotoxin_dir / 'ranking_debug.json').read_text())['order']
    assert (conotoxin_dir / 'ranked_0.pdb').read_text() == (conotoxin_dir / ('unrelaxed_%s.pdb' % order[0])).read_text()


def test_run_skips_the_cpu_stage_when_features_match(kit, full_data_dir, targets, tmp_path):
    args = ('run', '--fasta', targets['conotoxin'], '--output-dir', tmp_path, '--data-dir', full_data_dir,
            *GPU_ARGS, '--models-to-relax', 'none')
    res = kit(*args)
    assert res.returncode == 0, res.stdout
    assert 'search_uniref90' in res.stdout and (tmp_path / 'conotoxin' / 'ranked_1.pdb').exists()
    mtime = os.stat(tmp_path / 'conotoxin' / 'features.pkl').st_mtime_ns
    res = kit(*args)
    assert res.returncode == 0, res.stdout
    assert 'features.pkl matches its inputs, reusing it' in res.stdout
    assert os.stat(tmp_path / 'conotoxin' / 'features.pkl').st_mtime_ns == mtime


def test_seed_follows_alphafold_and_changes_predictions(kit, weights_dir, targets, conotoxin_dir, tmp_path):
    import shutil
    other = tmp_path / 'seed1' / 'conotoxin'
    shutil.copytree(str(conotoxin_dir), str(other))
    for d, seed in ((conotoxin_dir, '0'), (other, '1')):
        res = kit('predict', '--target-dir', d, '--data-dir', weights_dir, *GPU_ARGS,
                  '--models-to-relax', 'none', '--random-seed', seed)
        assert res.returncode == 0, res.stdout
    # Both seeds give deterministic, distinct results for the same weights.
    a = json.loads((conotoxin_dir / 'ranking_debug.json').read_text())['plddts']
    b = json.loads((other / 'ranking_debug.json').read_text())['plddts']
    assert a != b
