"""alphafold-predict --model-preset multimer on CPU: a heterodimer of two real test targets
(conotoxin, 24 residues; the first 30 of e2_dbd: small, so the random-weight complex relaxes in
seconds), its features made by the kit's multimer CPU stage, STAND-IN
random multimer v3 weights."""
import json
import os
import pickle
import shutil

import numpy as np
import pytest

from conftest import run_kit

CHAIN_LENGTHS = [24, 30]
NAMES = ['model_1_multimer_v3_pred_0', 'model_1_multimer_v3_pred_1']


@pytest.fixture(scope='session')
def dimer_features(data_dir, targets, tmp_path_factory):
    """alphafold-msa --model-preset multimer's features of the complex (conotoxin, then e2_dbd 1-30)."""
    out = tmp_path_factory.mktemp('dimer')
    fasta = out / 'dimer.fasta'
    e2 = ''.join(l.strip() for l in open(targets['e2_dbd']) if not l.startswith('>'))
    fasta.write_text(open(targets['conotoxin']).read() + '>e2_dbd 1-30\n%s\n' % e2[:30])
    res = run_kit('msa', '--model-preset', 'multimer', '--fasta', fasta, '--output-dir', out, '--data-dir', data_dir,
                  '--db-preset', 'reduced_dbs')
    assert res.returncode == 0, res.stdout
    return str(out / 'dimer')


@pytest.fixture
def dimer_dir(dimer_features, tmp_path):
    dst = tmp_path / 'dimer'
    shutil.copytree(dimer_features, str(dst))
    return dst


def test_dimer_prediction_writes_every_output_ranked_by_iptm_and_ptm(kit, multimer_weights_dir, dimer_dir):
    """Two predictions of model_1 (AlphaFold's flag spelling) with run_alphafold.py's seeds and
    names, ranked by 0.8 ipTM + 0.2 pTM (0-1), two chains in every ranked model, the best relaxed."""
    res = kit('predict', '--target-dir', dimer_dir, '--data-dir', multimer_weights_dir, '--model-preset', 'multimer',
              '--models', 'model_1_multimer_v3', '--num_multimer_predictions_per_model', '2', '--num-recycle', '1',
              '--random-seed', '1', timeout=1500)   # OpenMM relaxes the random-weight complex in 2-8 min
    assert res.returncode == 0, res.stdout
    d = dimer_dir
    ranking = json.loads((d / 'ranking_debug.json').read_text())
    order = ranking['order']
    assert sorted(order) == NAMES and sorted(ranking) == ['iptm+ptm', 'order']
    scores = json.loads((d / 'scores.json').read_text())
    assert scores['order'] == order
    with open(d / 'features.pkl', 'rb') as f:
        asym_id = pickle.load(f)['asym_id']
    recomputed = {}
    for name in NAMES:
        for f in ('unrelaxed_%s.pdb', 'unrelaxed_%s.cif', 'result_%s.pkl', 'confidence_%s.json', 'pae_%s.json'):
            assert (d / (f % name)).exists(), f % name
        with open(d / ('result_%s.pkl' % name), 'rb') as f:
            result = pickle.load(f)
        recomputed[name] = independent_ranking(result, asym_id)
        s = scores['models'][name]
        assert s['iptm'] == pytest.approx(float(result['iptm'])) and s['ptm'] == pytest.approx(float(result['ptm']))
        assert ranking['iptm+ptm'][name] == pytest.approx(recomputed[name], abs=1e-6) == s['ranking_confidence']
        assert 0 <= s['ranking_confidence'] <= 1 and s['recycles'] <= 1
        assert '%s: mean pLDDT %.2f, pTM %.3f, ipTM %.3f' % (name, s['mean_plddt'], s['ptm'], s['iptm']) in res.stdout
        pae = json.loads((d / ('pae_%s.json' % name)).read_text())[0]['predicted_aligned_error']
        assert np.shape(pae) == (54, 54)
    assert order == sorted(NAMES, key=recomputed.get, reverse=True)
    # run_alphafold.py: prediction i of the preset's 5 x 2 gets seed i + random_seed * 10.
    assert [scores['models'][n]['seed'] for n in NAMES] == [10, 11]
    relaxed = sorted(f for f in os.listdir(d) if f.startswith('relaxed_'))
    assert relaxed == ['relaxed_%s.cif' % order[0], 'relaxed_%s.pdb' % order[0]]
    assert list(json.loads((d / 'relax_metrics.json').read_text())) == [order[0]]
    assert (d / 'ranked_0.pdb').read_text() == (d / ('relaxed_%s.pdb' % order[0])).read_text()
    assert (d / 'ranked_1.pdb').read_text() == (d / ('unrelaxed_%s.pdb' % order[1])).read_text()
    # One chain ID per chain, as AlphaFold writes them: protein.to_pdb names chain index asym_id (1, 2)
    # B and C; relaxation (OpenMM) renames them A and B.
    for stem in ('ranked_0', 'ranked_1', 'unrelaxed_' + order[0]):
        in_pdb = chains(d / (stem + '.pdb'))
        assert in_pdb == chains(d / (stem + '.cif')), stem
        assert [n for _, n in in_pdb] == CHAIN_LENGTHS and len({c for c, _ in in_pdb}) == 2, (stem, in_pdb)
    assert [c for c, _ in chains(d / 'ranked_1.pdb')] == ['B', 'C']
    for picture in ('plddt.png', 'pae.png', 'msa_coverage.png'):
        assert (d / picture).stat().st_size > 10000, picture


def independent_ranking(result, asym_id):
    """0.8 ipTM + 0.2 pTM from the saved PAE probabilities (as logits) and the chains of the
    features, with the installed AlphaFold's TM-score code (the PAE head's 64 bins up to 31 A)."""
    import inspect
    from alphafold.common import confidence
    logits, breaks = np.log(result['aligned_confidence_probs'].astype(np.float64) + 1e-12), np.linspace(0., 31., 63)
    ptm = confidence.predicted_tm_score(logits, breaks)
    # DeepMind's asks for the interface score by name; the fork's takes asym_id alone as asking.
    interface = {'interface': True} if 'interface' in inspect.signature(confidence.predicted_tm_score).parameters else {}
    iptm = confidence.predicted_tm_score(logits, breaks, asym_id=asym_id, **interface)
    assert abs(iptm - ptm) > 1e-4   # the interface term really counts only inter-chain pairs
    return 0.8 * float(iptm) + 0.2 * float(ptm)


def chains(path):
    """[(chain id, residues)] of a PDB or mmCIF file, read by Biopython."""
    from Bio.PDB import MMCIFParser, PDBParser
    parser = MMCIFParser(QUIET=True) if str(path).endswith('.cif') else PDBParser(QUIET=True)
    model = next(iter(parser.get_structure('m', str(path))))
    return [(chain.id, len(chain)) for chain in model]


def test_presets_and_features_must_match_before_any_model_loads(kit, multimer_weights_dir, dimer_dir, conotoxin_dir):
    res = kit('predict', '--target-dir', dimer_dir, '--data-dir', multimer_weights_dir, '--model-preset', 'monomer_ptm')
    assert res.returncode == 2 and "holds a complex's (multimer) features" in res.stdout, res.stdout
    assert 'pass --model-preset multimer' in res.stdout and 'Traceback' not in res.stdout
    res = kit('predict', '--target-dir', conotoxin_dir, '--data-dir', multimer_weights_dir, '--model-preset', 'multimer')
    assert res.returncode == 2 and "holds a monomer's features" in res.stdout, res.stdout
    assert 'loaded model_1_multimer_v3 weights' not in res.stdout
