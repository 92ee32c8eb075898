"""The multimer CPU stage: features.pkl equals AlphaFold-Multimer's own data pipeline, run serially with
DeepMind's semantics (tests/stock_alphafold.py), array for array; each chain is searched once per site."""
import json
import os
import pickle

import pytest

from stock_alphafold import stock_multimer_features
from test_msa_parity import assert_same_features, comparable


def msa(kit, data_dir, fasta, out, preset, *extra):
    return kit('msa', '--fasta', fasta, '--output-dir', out, '--data-dir', data_dir, '--model_preset=multimer',
               '--db-preset', preset, '--cpus', '2', *extra)


def load(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


# HHblits on more than one thread orders hits of equal score by thread timing, and stock runs it on 4:
# the heterodimer's fn3 chain has such ties in the test BFD, so it runs on reduced_dbs (jackhmmer only).
@pytest.mark.parametrize('name, preset', [('pim1_epha2', 'reduced_dbs'), ('e2_dimer', 'full_dbs')])
def test_complex_features_equal_stock_multimer_pipeline(kit, data_dir, targets, tmp_path, name, preset):
    res = msa(kit, data_dir, targets[name], tmp_path / 'ours', preset)
    assert res.returncode == 0, res.stdout
    tdir = tmp_path / 'ours' / name
    stock_msas = tmp_path / 'stock'
    assert_same_features(load(tdir / 'features.pkl'), stock_multimer_features(data_dir, preset, targets[name],
                                                                              str(stock_msas)))
    # AlphaFold's msas/ layout: chain_id_map.json and one directory per unique chain, the same files.
    assert sorted(os.listdir(tdir / 'msas')) == sorted(os.listdir(stock_msas))
    for chain in (d for d in os.listdir(stock_msas) if (stock_msas / d).is_dir()):
        assert sorted(os.listdir(tdir / 'msas' / chain)) == sorted(os.listdir(stock_msas / chain))
        for fname in os.listdir(stock_msas / chain):
            assert comparable(tdir / 'msas' / chain / fname) == comparable(stock_msas / chain / fname), fname
    chains = json.loads((tdir / 'features.meta.json').read_text())['chains']
    assert [c['chain_id'] for c in chains] == ['A', 'B']
    if name == 'e2_dimer':   # a homomer: one chain searched, no UniProt search (nothing to pair)
        assert [c['msas_of'] for c in chains] == ['A', 'A'] and 'uniprot' not in res.stdout
    else:   # real pairing: UniProt rows of the same species joined across the chains
        assert 'uniprot_hits.sto' in os.listdir(tdir / 'msas' / 'B') and paired_rows(load(tdir / 'features.pkl')) > 5


def paired_rows(feats):
    """MSA rows (the query's included) with residues in both chains."""
    msa, asym = feats['msa'][:int(feats['num_alignments'])], feats['asym_id']
    return sum(1 for row in msa if (row[asym == 1] != 21).any() and (row[asym == 2] != 21).any())


def test_a_chain_shared_by_two_complexes_is_searched_once(kit, data_dir, targets, tmp_path):
    cache = tmp_path / 'cache'
    first = msa(kit, data_dir, targets['pim1_epha2'], tmp_path / 'out', 'reduced_dbs', '--feature-cache', cache)
    assert first.returncode == 0, first.stdout
    epha2 = open(targets['pim1_epha2']).read().split('\n')[3]
    e2 = open(targets['e2_dbd']).read().split('\n')[1]
    other = tmp_path / 'epha2_e2.fasta'   # EphA2's fn3 domain (chain B above) as chain A, with a new chain
    other.write_text('>EPHA2_HUMAN fn3 domain\n%s\n>E2 DNA-binding domain\n%s\n' % (epha2, e2))
    second = msa(kit, data_dir, other, tmp_path / 'out', 'reduced_dbs', '--feature-cache', cache)
    assert second.returncode == 0, second.stdout
    assert 'chain A: searches and features from the shared cache' in second.stdout
    assert 'A:uniref90' not in second.stdout and 'B:uniref90    started' in second.stdout
    sources = [c['features_source'] for c in json.loads((tmp_path / 'out' / 'epha2_e2' / 'features.meta.json')
                                                        .read_text())['chains']]
    assert sources == ['cache', 'cpu_stage']
    for fname in os.listdir(tmp_path / 'out' / 'pim1_epha2' / 'msas' / 'B'):   # its searches' results, as stored
        assert comparable(tmp_path / 'out' / 'epha2_e2' / 'msas' / 'A' / fname) == \
            comparable(tmp_path / 'out' / 'pim1_epha2' / 'msas' / 'B' / fname)
    # A homodimer of that chain (no pairing: another cache entry) takes its monomer searches from the
    # entry above and searches nothing; AlphaFold's homomer has no uniprot_hits.sto.
    (tmp_path / 'epha2_dimer.fasta').write_text('>A\n%s\n>B\n%s\n' % (epha2, epha2))
    homo = msa(kit, data_dir, tmp_path / 'epha2_dimer.fasta', tmp_path / 'out', 'reduced_dbs', '--feature-cache', cache)
    assert homo.returncode == 0 and 'chain A: its monomer searches from the shared cache' in homo.stdout, homo.stdout
    assert 'started' not in homo.stdout
    assert sorted(os.listdir(tmp_path / 'out' / 'epha2_dimer' / 'msas' / 'A')) == [
        'mgnify_hits.sto', 'pdb_hits.sto', 'small_bfd_hits.sto', 'uniref90_hits.sto']
    # A rerun reuses the complex's features.pkl.
    again = msa(kit, data_dir, other, tmp_path / 'out', 'reduced_dbs', '--feature-cache', cache)
    assert again.returncode == 0 and 'features.pkl matches its inputs, reusing it' in again.stdout
    assert 'started' not in again.stdout


def test_a_complex_without_templates_gets_alphafold_multimer_s_features_for_no_hit(kit, data_dir, targets, tmp_path):
    """--no-templates on a complex (a traceback before: AlphaFold-Multimer takes the argmax of each
    chain's template_aatype, and the monomer's empty arrays have none): each chain gets what
    AlphaFold-Multimer's own pipeline gives a chain whose template search finds nothing, checked
    against DeepMind's pipeline on the same databases with a pdb_seqres that nothing hits."""
    no_hits = tmp_path / 'data'
    no_hits.mkdir()
    for entry in os.listdir(data_dir):
        if entry != 'pdb_seqres':
            os.symlink(os.path.join(data_dir, entry), str(no_hits / entry))
    (no_hits / 'pdb_seqres').mkdir()
    (no_hits / 'pdb_seqres' / 'pdb_seqres.txt').write_text('>9zzz_A mol:protein length:30  NONE\n%s\n' % ('G' * 30))
    res = msa(kit, data_dir, targets['e2_dimer'], tmp_path / 'ours', 'reduced_dbs', '--no-templates')
    assert res.returncode == 0, res.stdout
    feats = load(tmp_path / 'ours' / 'e2_dimer' / 'features.pkl')
    assert not feats['template_all_atom_mask'].any()
    assert_same_features(feats, stock_multimer_features(str(no_hits), 'reduced_dbs', targets['e2_dimer'],
                                                        str(tmp_path / 'stock')))
