"""Length buckets: which length a target is padded to, and that every per-residue output is cut
back to the real residues (the table in fold_runtime/gpu_stage/padding.py)."""
import numpy as np

from fold_runtime.gpu_stage import padding


def test_bucket_is_the_smallest_edge_that_holds_the_sequence():
    assert padding.bucket(24, (64, 128)) == 64
    assert padding.bucket(64, (64, 128)) == 64
    assert padding.bucket(65, (64, 128)) == 128
    assert padding.bucket(300, (64, 128)) == 300      # longer than every edge: its own length
    assert padding.bucket(24, ()) == 24               # no buckets: no padding


def padded_result(n, padded):
    return {
        'plddt': np.arange(padded, dtype=float),
        'predicted_aligned_error': np.ones((padded, padded)),
        'ptm': np.float32(0.5),
        'distogram': {'logits': np.zeros((padded, padded, 64)), 'bin_edges': np.zeros(63)},
        'masked_msa': {'logits': np.zeros((508, padded, 23))},
        'structure_module': {'final_atom_positions': np.zeros((padded, 37, 3)),
                             'final_atom_mask': np.zeros((padded, 37))},
        'unknown_per_residue_pair': np.zeros((padded, padded, 2)),
    }


def test_crop_result_cuts_every_residue_axis_and_nothing_else():
    out = padding.crop_result(padded_result(24, 64), 24, 64)
    assert out['plddt'].shape == (24,) and list(out['plddt']) == list(range(24))
    assert out['predicted_aligned_error'].shape == (24, 24)
    assert out['distogram']['logits'].shape == (24, 24, 64)
    assert out['distogram']['bin_edges'].shape == (63,)          # bins, not residues
    assert out['masked_msa']['logits'].shape == (508, 24, 23)    # MSA rows stay
    assert out['structure_module']['final_atom_positions'].shape == (24, 37, 3)
    assert out['unknown_per_residue_pair'].shape == (24, 24, 2)  # not in the table: leading padded axes
    assert float(out['ptm']) == 0.5


def test_unpadded_results_are_returned_unchanged():
    result = padded_result(24, 24)
    assert padding.crop_result(result, 24, 24) is result


def test_crop_features_keeps_what_the_pdb_writer_reads():
    processed = {'aatype': np.zeros((1, 64)), 'residue_index': np.arange(64)[None], 'msa': np.zeros((1, 5, 64))}
    out = padding.crop_features(processed, 24)
    assert set(out) == set(padding.PDB_FEATURES)
    assert out['aatype'].shape == (1, 24) and list(out['residue_index'][0]) == list(range(24))
