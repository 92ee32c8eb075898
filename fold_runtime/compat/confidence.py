"""DeepMind v2.3.2's confidence metrics (alphafold/model/confidence.py and RunModel's
get_confidence_metrics), computed on the host from a model's logits: the fork computes its own
inside the model, with other PAE bin centres and ranking. numpy only."""


def _softmax(logits):
    import numpy as np
    logits = np.asarray(logits, np.float32)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def bin_centers(breaks):
    """DeepMind's _calculate_bin_centers: each bin's middle, and one step past the last (31.75 A)."""
    import numpy as np
    step = breaks[1] - breaks[0]
    centers = breaks + step / 2
    return np.append(centers, centers[-1] + step)


def plddt(logits):
    """Per-residue pLDDT (0-100) from the pLDDT head's logits."""
    import numpy as np
    num_bins = np.shape(logits)[-1]
    width = 1.0 / num_bins
    return np.sum(_softmax(logits) * np.arange(0.5 * width, 1.0, width), axis=-1) * 100


def predicted_tm_score(probs, breaks, asym_id=None):
    """pTM from the PAE head's probabilities, every residue weighted equally; with asym_id, ipTM:
    only pairs of residues in different chains count (DeepMind's interface=True)."""
    import numpy as np
    num_res = max(probs.shape[0], 19)
    d0 = 1.24 * (num_res - 15) ** (1. / 3) - 1.8
    per_pair = np.sum(probs * (1. / (1 + np.square(bin_centers(breaks)) / np.square(d0))), axis=-1)
    pairs = np.ones(per_pair.shape) if asym_id is None else (asym_id[:, None] != asym_id[None, :]).astype(float)
    per_alignment = np.sum(per_pair * pairs / (1e-8 + np.sum(pairs, axis=-1, keepdims=True)), axis=-1)
    return per_alignment.max()


def confidence_metrics(result, asym_id=None):
    """DeepMind's get_confidence_metrics: pLDDT, PAE and pTM when the model has the PAE head; the
    ranking confidence is mean pLDDT for monomers, and for multimers (asym_id given)
    0.8 * ipTM + 0.2 * pTM, on 0-1."""
    import numpy as np
    metrics = {'plddt': plddt(result['predicted_lddt']['logits'])}
    head = result.get('predicted_aligned_error')
    if isinstance(head, dict) and 'logits' in head:
        breaks = np.asarray(head['breaks'])
        probs = _softmax(head['logits'])
        centers = bin_centers(breaks)
        metrics.update(aligned_confidence_probs=probs, predicted_aligned_error=np.sum(probs * centers, axis=-1),
                       max_predicted_aligned_error=np.asarray(centers[-1]),
                       ptm=np.asarray(predicted_tm_score(probs, breaks)))
    if asym_id is None:
        metrics['ranking_confidence'] = np.mean(metrics['plddt'])
    else:
        metrics['iptm'] = np.asarray(predicted_tm_score(probs, breaks, asym_id))
        metrics['ranking_confidence'] = 0.8 * metrics['iptm'] + 0.2 * metrics['ptm']
    return metrics
