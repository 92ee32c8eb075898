"""AlphaFold's per-target output files, with its names and formats, each written atomically; an
mmCIF file (`.cif`) beside every PDB file, and the kit's scores.json."""
import os

import numpy as np

from fold_runtime import compat, target_layout
from kit_common import files

def model_scores(result, seed, num_recycle):
    """What scores.json and the log say of one model; pTM and ipTM are None where the model has none."""
    def scalar(key):
        return float(result[key]) if key in result else None
    return {'mean_plddt': float(np.mean(result['plddt'])), 'ptm': scalar('ptm'), 'iptm': scalar('iptm'),
            'ranking_confidence': float(result['ranking_confidence']),
            # Monomers run every recycle; multimer results say how many ran before early stopping.
            'recycles': int(result['num_recycles']) if 'num_recycles' in result else num_recycle,
            'seed': seed}


def model_outputs(tdir, model_name, result, unrelaxed_protein, write_result_pkl=True):
    """confidence_<m>.json, pae_<m>.json (ptm models), result_<m>.pkl, unrelaxed_<m>.pdb and .cif.
    The PDB file comes last: it marks the model as present."""
    from alphafold.common import protein
    files.write_text(os.path.join(tdir, target_layout.confidence(model_name)),
                      compat.confidence_json(result['plddt']))
    if 'predicted_aligned_error' in result and 'max_predicted_aligned_error' in result:
        files.write_text(os.path.join(tdir, target_layout.pae_json(model_name)),
                          compat.pae_json(result['predicted_aligned_error'],
                                          float(result['max_predicted_aligned_error'])))
    if write_result_pkl:
        files.write_pickle(os.path.join(tdir, target_layout.result_pkl(model_name)), to_numpy(result))
    stem = target_layout.unrelaxed(model_name)
    files.write_text(os.path.join(tdir, stem + '.cif'), compat.to_mmcif(unrelaxed_protein, stem))
    files.write_text(os.path.join(tdir, stem + '.pdb'), protein.to_pdb(unrelaxed_protein))


def write_structure(tdir, stem, pdb_text):
    """<stem>.pdb and <stem>.cif of the same model (the mmCIF made from the PDB's atoms)."""
    files.write_text(os.path.join(tdir, stem + '.cif'), cif_from_pdb(pdb_text, stem))
    files.write_text(os.path.join(tdir, stem + '.pdb'), pdb_text)


def cif_from_pdb(pdb_text, file_id):
    """The mmCIF of a PDB file's model, with the PDB file's chain IDs: from_pdb_string numbers the
    chains 0, 1, ... in the order of their IDs, which would rename a complex's B, C to A, B."""
    import dataclasses
    from alphafold.common import protein
    prot = protein.from_pdb_string(pdb_text)
    ids = sorted({line[21] for line in pdb_text.splitlines() if line.startswith('ATOM')})
    index = np.array([protein.PDB_CHAIN_IDS.index(ids[i]) for i in prot.chain_index], dtype=prot.chain_index.dtype)
    return compat.to_mmcif(dataclasses.replace(prot, chain_index=index), file_id)


def read_text(tdir, name):
    with open(os.path.join(tdir, name)) as f:
        return f.read()


def ranked_outputs(tdir, ranked_order, confidences, label, relaxed):
    """ranked_<i>.pdb and .cif (relaxed where relaxed) and ranking_debug.json, as run_alphafold.py;
    ranked files beyond the models ranked now (left by an earlier run) are removed."""
    for idx, name in enumerate(ranked_order):
        source = (target_layout.relaxed if name in relaxed else target_layout.unrelaxed)(name) + '.pdb'
        write_structure(tdir, target_layout.ranked(idx), read_text(tdir, source))
    for name in os.listdir(tdir):
        match = target_layout.RANKED.match(name)
        if match and int(match.group(1)) >= len(ranked_order):
            files.remove(os.path.join(tdir, name))
    files.write_json(os.path.join(tdir, target_layout.RANKING_DEBUG),
                      {label: {k: float(v) for k, v in confidences.items()}, 'order': ranked_order})


def scores_json(tdir, ranked_order, scores):
    """scores.json: each model's mean pLDDT, pTM, ipTM, ranking confidence, recycles and seed, and
    the ranking (best first)."""
    files.write_json(os.path.join(tdir, target_layout.SCORES),
                     {'models': {name: scores[name] for name in ranked_order}, 'order': ranked_order})


def to_numpy(tree):
    """Plain numpy (no jax arrays) in result pickles, as run_alphafold.py's _jnp_to_np."""
    if isinstance(tree, dict):
        return {k: to_numpy(v) for k, v in tree.items()}
    return np.asarray(tree)
