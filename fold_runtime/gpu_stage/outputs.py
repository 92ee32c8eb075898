"""AlphaFold's per-target output files, with its names and formats, each written atomically."""
import os

import numpy as np

from fold_runtime import __version__, compat
from kit_common import files

PROVENANCE_FILE = 'prediction.meta.json'


def model_outputs(tdir, model_name, result, unrelaxed_pdb, write_result_pkl=True):
    """confidence_<m>.json, pae_<m>.json (ptm models), result_<m>.pkl, unrelaxed_<m>.pdb."""
    files.write_text(os.path.join(tdir, 'confidence_%s.json' % model_name),
                      compat.confidence_json(result['plddt']))
    if 'predicted_aligned_error' in result and 'max_predicted_aligned_error' in result:
        files.write_text(os.path.join(tdir, 'pae_%s.json' % model_name),
                          compat.pae_json(result['predicted_aligned_error'],
                                          float(result['max_predicted_aligned_error'])))
    if write_result_pkl:
        files.write_pickle(os.path.join(tdir, 'result_%s.pkl' % model_name), to_numpy(result))
    files.write_text(os.path.join(tdir, 'unrelaxed_%s.pdb' % model_name), unrelaxed_pdb)


def ranked_outputs(tdir, ranked_order, confidences, label, unrelaxed_pdbs, relaxed_pdbs):
    """ranked_<i>.pdb (relaxed where relaxed) and ranking_debug.json, as run_alphafold.py."""
    for idx, name in enumerate(ranked_order):
        files.write_text(os.path.join(tdir, 'ranked_%d.pdb' % idx),
                          relaxed_pdbs.get(name, unrelaxed_pdbs[name]))
    files.write_json(os.path.join(tdir, 'ranking_debug.json'),
                      {label: {k: float(v) for k, v in confidences.items()}, 'order': ranked_order})


def provenance(tdir, seeds, num_recycle):
    """prediction.meta.json: which AlphaFold ran the models, under which semantics, with which
    seeds and recycles."""
    distribution, version = compat.fidelity.distribution()
    files.write_json(os.path.join(tdir, PROVENANCE_FILE), {
        'alphafold_distribution': distribution, 'alphafold_version': version, 'semantics': compat.SEMANTICS,
        'kit_version': __version__, 'models': {name: {'seed': seed, 'num_recycle': num_recycle[name]}
                                               for name, seed in seeds.items()}})


def to_numpy(tree):
    """Plain numpy (no jax arrays) in result pickles, as run_alphafold.py's _jnp_to_np."""
    if isinstance(tree, dict):
        return {k: to_numpy(v) for k, v in tree.items()}
    return np.asarray(tree)
