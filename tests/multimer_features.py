"""STAND-IN for the kit's multimer CPU stage (issue #15, built in parallel): a complex's
features.pkl made with AlphaFold's own pipeline_multimer building blocks from per-chain monomer
features. Replace build_complex_target() by `alphafold-msa --model-preset multimer` once it lands.

What pipeline_multimer.DataPipeline.process does after its searches: each chain's monomer features
plus its pairing features (`*_all_seq`, here from the chain's own UniRef90 MSA, as
_all_seq_msa_features makes them from the UniProt hits), convert_monomer_features,
add_assembly_features, feature_processing.pair_and_merge and pad_msa. Templates are the monomer
search's (HHsearch on PDB70), where AlphaFold-Multimer searches pdb_seqres with hmmsearch.
"""
import json
import os
import pickle

CHAIN_IDS = 'ABCDEFGH'


def all_seq_features(msa):
    """The pairing features of one chain's MSA (parsers.Msa), as pipeline_multimer makes them."""
    from alphafold.data import msa_pairing, pipeline
    feats = pipeline.make_msa_features([msa])
    valid = msa_pairing.MSA_FEATURES + ('msa_species_identifiers',)
    return {'%s_all_seq' % k: v for k, v in feats.items() if k in valid}


def no_template_default(feats):
    """Monomer features whose template search found nothing get what the multimer pipeline's
    hmmsearch featurizer returns then: one all-zero template (the HHsearch one returns none)."""
    import numpy as np
    from alphafold.common import residue_constants
    if len(feats['template_aatype']):
        return feats
    num_res, atoms = len(feats['aatype']), residue_constants.atom_type_num
    return dict(feats, template_aatype=np.zeros((1, num_res, len(residue_constants.restypes_with_x_and_gap)),
                                                np.float32),
                template_all_atom_masks=np.zeros((1, num_res, atoms), np.float32),
                template_all_atom_positions=np.zeros((1, num_res, atoms, 3), np.float32),
                template_domain_names=np.array([b''], dtype=object), template_sequence=np.array([b''], dtype=object),
                template_sum_probs=np.array([0], dtype=np.float32))


def merge_chains(chains):
    """A complex's model features from its chains' monomer features (with *_all_seq features when
    the chains are not all identical), in chain order A, B, ..."""
    from alphafold.data import feature_processing, pipeline_multimer
    converted = {CHAIN_IDS[i]: pipeline_multimer.convert_monomer_features(no_template_default(f), chain_id=CHAIN_IDS[i])
                 for i, f in enumerate(chains)}
    merged = feature_processing.pair_and_merge(
        all_chain_features=pipeline_multimer.add_assembly_features(converted))
    return pipeline_multimer.pad_msa(merged, 512)


def chain_sequences(feats):
    """The chain sequences of model features, in asym_id order (the GPU stage's view)."""
    from fold_runtime.gpu_stage import predict
    return predict.feature_sequence(feats).split(':')


def build_complex_target(chain_dirs, out_dir, name):
    """out_dir/name/features.pkl and features.meta.json of the complex of these CPU-stage target
    directories (one chain each, in order), the meta taken from the first chain's with the
    complex's sequence ('A:B', the chains joined by ':') and length."""
    from alphafold.data import parsers
    from fold_runtime import meta
    from fold_runtime.compat import fidelity
    fidelity.apply_data()   # DeepMind's make_msa_features for the pairing features
    chains = []
    for d in chain_dirs:
        with open(os.path.join(d, 'features.pkl'), 'rb') as f:
            feats = pickle.load(f)
        with open(os.path.join(d, 'msas', 'uniref90_hits.sto')) as f:
            feats.update(all_seq_features(parsers.parse_stockholm(f.read())))
        chains.append(feats)
    merged = merge_chains(chains)
    target = os.path.join(out_dir, name)
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, 'features.pkl'), 'wb') as f:
        pickle.dump(merged, f, protocol=4)
    sequence = ':'.join(c['sequence'][0].decode() for c in chains)
    with open(os.path.join(chain_dirs[0], meta.META_FILE)) as f:
        record = json.load(f)
    record.update(target=name, sequence_sha256=meta.sequence_sha256(sequence), sequence_length=len(sequence) - len(chains) + 1)
    with open(os.path.join(target, meta.META_FILE), 'w') as f:
        json.dump(record, f, indent=2)
    return target
