"""Length buckets: pad each target up to a bucket edge so one compiled executable serves every
protein of that bucket, then crop every per-residue output back to the real residues.

Padded residues carry zero masks, so the real residues' predictions match unpadded runs within
float rounding (tests/integration/test_batch.py states the tolerance); nothing of the padding reaches
PDB files, pLDDT, PAE or result pickles.
"""
import numpy as np

# ColabFold-style edges; longer targets run at their own length.
DEFAULT_EDGES = (64, 96, 128, 160, 192, 256, 320, 384, 448, 512, 640, 768, 896, 1024, 1280,
                 1536, 2048, 2560, 3072)
# Which axes of each model output run over residues (the rest: bins, atoms, MSA rows, scalars).
RESIDUE_AXES = {
    'plddt': (0,), 'predicted_lddt.logits': (0,), 'experimentally_resolved.logits': (0,),
    'predicted_aligned_error': (0, 1), 'aligned_confidence_probs': (0, 1),
    'predicted_aligned_error.logits': (0, 1), 'distogram.logits': (0, 1),
    'masked_msa.logits': (1,), 'structure_module.final_atom_positions': (0,),
    'structure_module.final_atom_mask': (0,),
}
# Processed-feature keys that protein.from_prediction reads (leading ensemble axis, then residues).
PDB_FEATURES = ('aatype', 'residue_index')


def bucket(length, edges):
    """The padded length: the smallest edge that holds the sequence, else its own length."""
    return next((e for e in edges if e >= length), length)


def crop_result(result, length, padded, prefix=''):
    """The model output with every residue axis cut back to the real length."""
    if padded == length:
        return result
    out = {}
    for key, value in result.items():
        name = prefix + key
        if isinstance(value, dict):
            out[key] = crop_result(value, length, padded, name + '.')
            continue
        axes = RESIDUE_AXES.get(name)
        if axes is None:   # an output this table does not know: cut leading padded axes
            axes = _leading_padded_axes(np.shape(value), padded)
        out[key] = _crop(np.asarray(value), axes, length)
    return out


def crop_features(processed, length):
    """The processed features protein.from_prediction needs, without the padding."""
    return {k: np.asarray(processed[k])[..., :length] for k in PDB_FEATURES}


def _leading_padded_axes(shape, padded):
    axes = []
    for i, n in enumerate(shape):
        if n != padded:
            break
        axes.append(i)
    return tuple(axes)


def _crop(array, axes, length):
    index = [slice(None)] * array.ndim
    for axis in axes:
        index[axis] = slice(0, length)
    return array[tuple(index)]
