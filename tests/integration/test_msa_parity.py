"""Parity: features.pkl from the concurrent CPU stage equals stock DataPipeline's, array for array,
where stock means DeepMind's v2.3.2 semantics (tests/stock_alphafold.py restores them on the fork)."""
import json
import os
import pickle

import numpy as np
import pytest
from alphafold.common import residue_constants

from stock_alphafold import stock_features


def assert_same_features(ours, stock):
    assert list(ours) == list(stock)
    for key in stock:
        a, b = np.asarray(ours[key]), np.asarray(stock[key])
        assert a.dtype == b.dtype, key
        assert a.shape == b.shape, key
        assert np.array_equal(a, b), key


def comparable(path):
    """File text without the lines HH-suite stamps with the date and temporary file names."""
    return [l for l in path.read_text().splitlines() if not l.startswith(('Date ', 'Command '))]


@pytest.mark.parametrize('preset', ['full_dbs', 'reduced_dbs'])
def test_concurrent_stage_equals_stock_pipeline(kit, data_dir, targets, tmp_path, preset):
    out = tmp_path / 'ours'
    res = kit('msa', '--fasta', targets['hbb_human'], targets['e2_dbd'], '--output-dir', out,
              '--data-dir', data_dir, '--db-preset', preset, '--cpus', '2')
    assert res.returncode == 0, res.stdout
    for name in ('hbb_human', 'e2_dbd'):
        with open(out / name / 'features.pkl', 'rb') as f:
            ours = pickle.load(f)
        stock_msas = tmp_path / 'stock' / name
        stock = stock_features(data_dir, preset, targets[name], str(stock_msas))
        assert_same_features(ours, stock)
        # AlphaFold's msas/ file names and contents, too.
        assert sorted(os.listdir(out / name / 'msas')) == sorted(os.listdir(stock_msas))
        for fname in os.listdir(stock_msas):
            assert comparable(out / name / 'msas' / fname) == comparable(stock_msas / fname), fname
        assert_deepmind_msa(ours, name)
    # The test data is real: the globin finds many homologs. The E2 domain finds its own structure,
    # 1A7G, which DeepMind's prefilter rejects (an exact subsequence covering > 95% of the query).
    with open(out / 'hbb_human' / 'features.pkl', 'rb') as f:
        assert pickle.load(f)['msa'].shape[0] > 20
    with open(out / 'e2_dbd' / 'features.pkl', 'rb') as f:
        e2 = pickle.load(f)
    assert b'1a7g_E' not in list(e2['template_domain_names']) and len(e2['template_domain_names']) >= 1
    assert json.loads((out / 'e2_dbd' / 'features.meta.json').read_text())['tools']['kalign'].startswith('2.04')


def assert_deepmind_msa(feats, name):
    """DeepMind's make_msa_features: every aligned sequence once, the query as row 0, and
    num_alignments the number of rows."""
    rows = [tuple(r) for r in feats['msa']]
    assert len(set(rows)) == len(rows), name
    assert ''.join(residue_constants.ID_TO_HHBLITS_AA[i] for i in rows[0]) == feats['sequence'][0].decode()
    assert set(feats['num_alignments']) == {len(rows)}


def test_serial_mode_gives_the_same_features(kit, data_dir, targets, tmp_path):
    for mode in ('serial', 'concurrent'):
        extra = ['--serial'] if mode == 'serial' else []
        res = kit('msa', '--fasta', targets['e2_dbd'], '--output-dir', tmp_path / mode,
                  '--data-dir', data_dir, '--db-preset', 'reduced_dbs', *extra)
        assert res.returncode == 0, res.stdout
        assert '%s searches' % mode in res.stdout
    with open(tmp_path / 'serial' / 'e2_dbd' / 'features.pkl', 'rb') as f:
        serial = pickle.load(f)
    with open(tmp_path / 'concurrent' / 'e2_dbd' / 'features.pkl', 'rb') as f:
        assert_same_features(pickle.load(f), serial)
