"""alphafold-predict and alphafold-run on CPU, with the STAND-IN random test weights."""
import json
import os
import pickle

import numpy as np

from conftest import GPU_ARGS


def predict(kit, weights_dir, targets, out_dir, *extra):
    return kit('predict', '--fasta', targets['conotoxin'], '--output-dir', out_dir,
               '--data-dir', weights_dir, *GPU_ARGS, *extra)


def test_predict_writes_alphafold_outputs_and_relaxes_only_the_best(conotoxin_predicted):
    d, log = conotoxin_predicted
    assert 'USING RANDOM TEST WEIGHTS' in log
    ranking = json.loads((d / 'ranking_debug.json').read_text())
    order = ranking['order']
    assert sorted(order) == ['model_1_ptm', 'model_2_ptm']
    assert ranking['plddts'][order[0]] >= ranking['plddts'][order[1]]
    # Exactly one relaxation: the best model's.
    metrics = json.loads((d / 'relax_metrics.json').read_text())
    assert list(metrics) == [order[0]]
    assert sorted(f for f in os.listdir(d) if f.startswith('relaxed_')) == ['relaxed_%s.%s' % (order[0], ext)
                                                                             for ext in ('cif', 'pdb')]
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
    check_scores(log, d, order)
    check_mmcif(d, order)
    check_plots(d, order)


def check_scores(log, d, order):
    """Each model's log line gives mean pLDDT and pTM; scores.json holds them for every model."""
    scores = json.loads((d / 'scores.json').read_text())
    assert scores['order'] == order
    for name in order:
        s = scores['models'][name]
        with open(d / ('result_%s.pkl' % name), 'rb') as f:
            result = pickle.load(f)
        assert abs(s['mean_plddt'] - float(np.mean(result['plddt']))) < 1e-6
        assert abs(s['ptm'] - float(result['ptm'])) < 1e-6 and s['iptm'] is None
        assert s['ranking_confidence'] == json.loads((d / 'ranking_debug.json').read_text())['plddts'][name]
        assert s['recycles'] == int(GPU_ARGS[-1])   # and 1 in test_predict_parity's recycled run
        assert '%s: mean pLDDT %.2f, pTM %.3f' % (name, s['mean_plddt'], s['ptm']) in log
    assert [scores['models'][n]['seed'] for n in ('model_1_ptm', 'model_2_ptm')] == [0, 1]


def check_mmcif(d, order):
    """A .cif beside every .pdb, read by Biopython: C-alpha as in the .pdb, pLDDT as B-factors."""
    from Bio.PDB import MMCIFParser, PDBParser
    pdbs = sorted(f for f in os.listdir(d) if f.endswith('.pdb'))
    assert len(pdbs) == 5   # 2 unrelaxed, 1 relaxed, 2 ranked
    for pdb in pdbs:
        cif = pdb[:-4] + '.cif'
        ours = MMCIFParser(QUIET=True).get_structure('cif', str(d / cif))
        ref = PDBParser(QUIET=True).get_structure('pdb', str(d / pdb))
        ca = np.array([a.coord for a in ours.get_atoms() if a.get_id() == 'CA'])
        assert ca.shape == (24, 3), cif
        np.testing.assert_array_equal(ca, np.array([a.coord for a in ref.get_atoms() if a.get_id() == 'CA']))
        model = pdb[:-4].split('_', 1)[1]
        if pdb.startswith('ranked_'):
            model = order[int(model)]
        plddt = json.loads((d / ('confidence_%s.json' % model)).read_text())['confidenceScore']
        np.testing.assert_allclose([a.bfactor for a in ours.get_atoms() if a.get_id() == 'CA'], plddt, atol=0.006)
    # The writer for AlphaFold installs without protein.to_mmcif (the images' DeepMind v2.3.2).
    import io
    from alphafold.common import protein
    from fold_runtime import compat
    pdb = (d / 'ranked_1.pdb').read_text()
    text = compat._mmcif_via_biopython(protein.from_pdb_string(pdb), 'ranked_1')
    ours = MMCIFParser(QUIET=True).get_structure('cif', io.StringIO(text))
    ref = PDBParser(QUIET=True).get_structure('pdb', io.StringIO(pdb))
    assert [(a.get_parent().get_id()[1], a.get_id(), tuple(a.coord), a.bfactor) for a in ours.get_atoms()] == \
        [(a.get_parent().get_id()[1], a.get_id(), tuple(a.coord), a.bfactor) for a in ref.get_atoms()]


def check_plots(d, order):
    """The three pictures decode; their figures have one pLDDT line and one PAE panel per model."""
    import matplotlib.image
    from fold_runtime import target_layout
    from fold_runtime.gpu_stage import plots
    for name in target_layout.PLOTS:
        image = matplotlib.image.imread(str(d / name))
        assert image.ndim == 3 and image.shape[0] > 200, name
    scores = json.loads((d / 'scores.json').read_text())['models']
    plddts = {n: json.loads((d / ('confidence_%s.json' % n)).read_text())['confidenceScore'] for n in order}
    fig = plots.plddt_figure(plddts, scores)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(fig.axes[0].get_lines()) == 2 and legend[0].startswith('rank 1: %s (mean pLDDT ' % order[0])
    paes = {n: (np.array(json.loads((d / ('pae_%s.json' % n)).read_text())[0]['predicted_aligned_error']), 31.75)
            for n in order}
    fig = plots.pae_figure(paes, scores)
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 2 and len(fig.axes) == 4          # a colour bar beside each panel
    assert panels[0].get_title() == '%s\npTM %.3f' % (order[0], scores[order[0]]['ptm'])
    assert panels[0].get_xlabel() == 'scored residue' and panels[0].get_ylabel() == 'aligned residue'


def test_relax_all_none_and_no_result_pkl(kit, weights_dir, targets, conotoxin_dir):
    res = predict(kit, weights_dir, targets, conotoxin_dir.parent, '--models-to-relax', 'all',
                  '--no-result-pkl', '--no-plots', '--progress-interval', '0.2')
    assert res.returncode == 0, res.stdout
    for step in ('model_1_ptm: compiling and predicting (', 'relaxing model_1_ptm (OpenMM, CPU)',
                 'relaxing model_2_ptm (OpenMM, CPU)'):
        assert '... still running: %s' % step in res.stdout, step      # heartbeat lines
    assert not list(conotoxin_dir.glob('*.png'))
    assert len(json.loads((conotoxin_dir / 'relax_metrics.json').read_text())) == 2
    assert not list(conotoxin_dir.glob('result_*.pkl'))
    for f in conotoxin_dir.glob('relaxed_*.pdb'):
        f.unlink()
    (conotoxin_dir / 'relax_metrics.json').unlink()
    # Relaxation is decided after prediction: the models are kept, ranked_* become unrelaxed.
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, *GPU_ARGS,
              '--models-to-relax', 'none', '--no-result-pkl')
    assert res.returncode == 0 and res.stdout.count(': kept: its files exist') == 2, res.stdout
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


def test_seed_follows_alphafold_and_changes_predictions(kit, weights_dir, conotoxin_predicted, predicted_dir):
    """--random-seed 3: prediction i of the preset's n gets i + 3 * n (model_2_ptm: 1 + 3 * 5), as
    in run_alphafold.py, and predicts other models than seed 0 (the shared prediction), which are
    therefore not kept from it: another option, predicted again."""
    conotoxin_dir = predicted_dir
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', weights_dir, *GPU_ARGS,
              '--models-to-relax', 'none', '--random-seed', '3')
    assert res.returncode == 0 and 'kept' not in res.stdout and res.stdout.count(': mean pLDDT') == 2, res.stdout
    records = json.loads((conotoxin_dir / 'prediction.meta.json').read_text())['models']
    assert [(records[n]['seed'], records[n]['scores']['seed']) for n in ('model_1_ptm', 'model_2_ptm')] == \
        [(3 * 5, 3 * 5), (1 + 3 * 5, 1 + 3 * 5)]
    a = json.loads((conotoxin_predicted[0] / 'ranking_debug.json').read_text())['plddts']
    b = json.loads((conotoxin_dir / 'ranking_debug.json').read_text())['plddts']
    assert a != b


def test_rerun_keeps_finished_models_and_overwrite_predicts_them_again(kit, weights_dir, targets, predicted_dir):
    d = predicted_dir
    timings = json.loads((d / 'timings.json').read_text())
    stamps = {f: os.stat(str(d / f)).st_mtime_ns for f in ('unrelaxed_model_1_ptm.pdb', 'result_model_2_ptm.pkl')}
    res = predict(kit, weights_dir, targets, d.parent, '--models-to-relax', 'none')   # a requeued job
    assert res.returncode == 0, res.stdout
    for name in ('model_1_ptm', 'model_2_ptm'):
        assert '%s: kept: its files exist and were made from these features with these options' % name in res.stdout
        assert '%s: mean pLDDT' % name not in res.stdout
    after = json.loads((d / 'timings.json').read_text())
    assert {k: after[k] for k in timings if k.startswith('predict_')} == \
        {k: v for k, v in timings.items() if k.startswith('predict_')}           # nothing predicted again
    assert stamps == {f: os.stat(str(d / f)).st_mtime_ns for f in stamps}
    assert (d / 'ranked_0.cif').exists() and (d / 'plddt.png').exists()
    # --overwrite: predicted again (another option, another seed: test_seed_follows_alphafold...).
    res = predict(kit, weights_dir, targets, d.parent, '--models-to-relax', 'none', '--overwrite')
    assert res.returncode == 0, res.stdout
    assert 'kept' not in res.stdout and res.stdout.count(': mean pLDDT') == 2, res.stdout


def test_model_subsets_in_separate_jobs_end_as_one_job(kit, weights_dir, conotoxin_predicted, conotoxin_dir):
    """One model per job (ParallelFold-style), the worse first, give the ranked files and
    ranking_debug.json of one job with both (the shared prediction), though the worse model was
    ranked_0 after the first job."""
    one, split = conotoxin_predicted[0], conotoxin_dir
    best, worse = json.loads((one / 'ranking_debug.json').read_text())['order']
    for model in (worse, best):
        res = kit('predict', '--target-dir', split, '--data-dir', weights_dir, *GPU_ARGS[:2],
                  '--models', model[:-len('_ptm')], *GPU_ARGS[4:], '--models-to-relax', 'none')
        assert res.returncode == 0, res.stdout
    assert 'ranking 2 models made from these features' in res.stdout
    names = ['unrelaxed_%s.pdb' % n for n in (best, worse)] + ['ranked_1.pdb', 'ranked_1.cif']
    for name in names + ['ranking_debug.json', 'scores.json']:
        assert (split / name).read_bytes() == (one / name).read_bytes(), name
    assert (split / 'ranked_0.pdb').read_bytes() == (one / ('unrelaxed_%s.pdb' % best)).read_bytes()
    assert not (split / 'ranked_2.pdb').exists()
    # Relaxation, decided over every model: a third job with both keeps both models and relaxes
    # only the best (OpenMM on the CPU is not bit-reproducible across processes, so the relaxed
    # coordinates are compared by which model was relaxed, not byte for byte).
    res = kit('predict', '--target-dir', split, '--data-dir', weights_dir, *GPU_ARGS)
    assert res.returncode == 0 and res.stdout.count(': kept: its files exist') == 2, res.stdout
    assert sorted(f for f in os.listdir(split) if f.startswith('relaxed_')) == \
        ['relaxed_%s.cif' % best, 'relaxed_%s.pdb' % best]
    assert (split / 'ranked_0.pdb').read_text() == (split / ('relaxed_%s.pdb' % best)).read_text()
    assert list(json.loads((split / 'relax_metrics.json').read_text())) == [best]


def test_num_seeds_predicts_each_model_with_alphafolds_seeds_and_ranks_all(kit, weights_dir, targets, predicted_dir):
    """--num-seeds 2: <model>_pred_<k> with run_alphafold.py's seeds (index over the preset's 5 x 2
    predictions), ranked together, kept on rerun; one seed (the shared prediction's models, made
    first) then ranks its own models only."""
    d = predicted_dir
    res = predict(kit, weights_dir, targets, d.parent, '--models-to-relax', 'none', '--num-seeds', '2')
    assert res.returncode == 0, res.stdout
    names = ['model_1_ptm_pred_0', 'model_1_ptm_pred_1', 'model_2_ptm_pred_0', 'model_2_ptm_pred_1']
    ranking = json.loads((d / 'ranking_debug.json').read_text())
    assert sorted(ranking['order']) == names
    assert [ranking['plddts'][n] for n in ranking['order']] == sorted(ranking['plddts'].values(), reverse=True)
    scores = json.loads((d / 'scores.json').read_text())['models']
    records = json.loads((d / 'prediction.meta.json').read_text())['models']
    assert [scores[n]['seed'] for n in names] == [records[n]['seed'] for n in names] == [0, 1, 2, 3]
    assert len(set(ranking['plddts'].values())) == 4                     # four different predictions
    for i, name in enumerate(ranking['order']):
        assert (d / ('ranked_%d.pdb' % i)).read_text() == (d / ('unrelaxed_%s.pdb' % name)).read_text()
    res = predict(kit, weights_dir, targets, d.parent, '--models-to-relax', 'none', '--num-seeds', '2')
    assert res.returncode == 0 and res.stdout.count(': kept: its files exist') == 4, res.stdout
    assert ': mean pLDDT' not in res.stdout
    # One seed: the models' own names and seeds, as before; model_1's seed 0 is pred_0's.
    res = predict(kit, weights_dir, targets, d.parent, '--models-to-relax', 'none')
    assert res.returncode == 0 and res.stdout.count(': kept: its files exist') == 2, res.stdout
    single = json.loads((d / 'ranking_debug.json').read_text())['plddts']
    assert sorted(single) == ['model_1_ptm', 'model_2_ptm'] and not (d / 'ranked_2.pdb').exists()
    assert single['model_1_ptm'] == ranking['plddts']['model_1_ptm_pred_0']
