"""The AlphaFold API differences between v2.0.x (legacy images) and v2.3.x, kept in one place,
and (compat.fidelity, compat.runners, compat.confidence) DeepMind's v2.3.2 semantics restored on
ColabFold's fork.

v2.3 passes MSAs around as parsers.Msa and truncates in the tools; v2.0 uses
(sequences, deletion_matrix) tuples, truncates after parsing, and featurizes templates with a
date-aware signature. Everything else in fold_runtime calls these functions only.
"""
from alphafold.data import parsers, pipeline, templates

from fold_runtime.compat import confidence, fidelity

IS_V2_0 = not hasattr(parsers, 'Msa')
HAS_MULTIMER = not IS_V2_0   # AlphaFold-Multimer's data pipeline came with v2.1
DB_VERSION = '2.0' if IS_V2_0 else '2.3'
# What features.meta.json and prediction.meta.json record; features made under other semantics
# are not reused.
SEMANTICS = 'deepmind-v2.0' if IS_V2_0 else fidelity.SEMANTICS
# run_alphafold.py's caps.
UNIREF_MAX_HITS = 10000
MGNIFY_MAX_HITS = 501
MAX_TEMPLATE_HITS = 20


def jackhmmer_sto(runner, fasta_path, max_sequences):
    """Stockholm text of a jackhmmer search, truncated as the stock pipeline stores it."""
    return jackhmmer_result(runner, fasta_path, max_sequences)['sto']


def jackhmmer_result(runner, fasta_path, max_sequences):
    """The wrapper's result (sto, and tbl when the runner was made with get_tblout)."""
    if IS_V2_0 or max_sequences is None:
        return runner.query(fasta_path)[0]
    return runner.query(fasta_path, max_sequences)[0]


def read_sto(path, max_sequences):
    """Parse a stored Stockholm file, truncated exactly as the stock pipeline does."""
    if IS_V2_0:
        with open(path) as f:
            seqs, deletions, _ = parsers.parse_stockholm(f.read())
        n = max_sequences or len(seqs)
        return seqs[:n], deletions[:n]
    if max_sequences is None:
        with open(path) as f:
            return parsers.parse_stockholm(f.read())
    return parsers.parse_stockholm(parsers.truncate_stockholm_msa(path, max_sequences))


def read_a3m(path):
    with open(path) as f:
        return parsers.parse_a3m(f.read())


def template_query_a3m(uniref90_sto_path):
    """The UniRef90 alignment turned into HHsearch's input, as the stock pipeline does it."""
    if IS_V2_0:
        with open(uniref90_sto_path) as f:
            return parsers.convert_stockholm_to_a3m(f.read(), max_sequences=UNIREF_MAX_HITS)
    return parsers.convert_stockholm_to_a3m(template_query_sto(uniref90_sto_path))


def template_query_sto(uniref90_sto_path):
    """The UniRef90 alignment as the stock pipeline gives it to the template search (v2.1+)."""
    sto = parsers.truncate_stockholm_msa(uniref90_sto_path, UNIREF_MAX_HITS)
    sto = parsers.deduplicate_stockholm_msa(sto)
    return parsers.remove_empty_columns_from_stockholm_msa(sto)


def hmmsearch(binary, hmmbuild_binary, database):
    """AlphaFold-Multimer's template searcher (v2.1+, which the multimer preset requires)."""
    from alphafold.data.tools import hmmsearch as tool
    return tool.Hmmsearch(binary_path=binary, hmmbuild_binary_path=hmmbuild_binary, database_path=database)


def template_hits(template_searcher, hhr, query_sequence):
    if IS_V2_0:
        return parsers.parse_hhr(hhr)
    return template_searcher.get_template_hits(output_string=hhr, input_sequence=query_sequence)


def template_featurizer(mmcif_dir, max_template_date, kalign_binary, obsolete_path, hmmsearch_hits=False):
    """hmmsearch_hits: the multimer preset's featurizer, for hits of hmmsearch on pdb_seqres."""
    if hmmsearch_hits:
        cls = templates.HmmsearchHitFeaturizer
    else:
        cls = getattr(templates, 'HhsearchHitFeaturizer', None) or templates.TemplateHitFeaturizer
    return cls(mmcif_dir=mmcif_dir, max_template_date=max_template_date,
               max_hits=MAX_TEMPLATE_HITS, kalign_binary_path=kalign_binary,
               release_dates_path=None, obsolete_pdbs_path=obsolete_path)


def template_features(featurizer, query_sequence, hits):
    if IS_V2_0:
        return featurizer.get_templates(query_sequence=query_sequence, query_pdb_code=None,
                                        query_release_date=None, hits=hits).features
    return featurizer.get_templates(query_sequence=query_sequence, hits=hits).features


def empty_template_features(sequence, multimer=False):
    """What AlphaFold's template featurizer returns when it finds no hit, without the featurizer,
    whose constructor needs the mmCIF files a run without templates does not use. Monomer (v2.0 to
    v2.3.2 alike, HhsearchHitFeaturizer): each template feature an empty array of its dtype.
    Multimer (HmmsearchHitFeaturizer): one all-zero template of the chain's length, which
    pipeline_multimer's convert_monomer_features needs (it takes the argmax of template_aatype)."""
    import numpy as np
    if not multimer:
        return {name: np.array([], dtype=dtype) for name, dtype in templates.TEMPLATE_FEATURES.items()}
    from alphafold.common import residue_constants
    n, atoms = len(sequence), residue_constants.atom_type_num
    return {'template_aatype': np.zeros((1, n, len(residue_constants.restypes_with_x_and_gap)), np.float32),
            'template_all_atom_masks': np.zeros((1, n, atoms), np.float32),
            'template_all_atom_positions': np.zeros((1, n, atoms, 3), np.float32),
            'template_domain_names': np.array([b''], dtype=object),
            'template_sequence': np.array([b''], dtype=object),
            'template_sum_probs': np.array([0], dtype=np.float32)}


def msa_features(msas):
    """msas: (uniref90, bfd, mgnify), each as returned by read_sto/read_a3m."""
    if IS_V2_0:
        return pipeline.make_msa_features(msas=[m[0] for m in msas],
                                          deletion_matrices=[m[1] for m in msas])
    return pipeline.make_msa_features(msas)


def predict(runner, processed, random_seed):
    """The result dict of DeepMind's RunModel.predict (runners.Runner on the fork)."""
    return runner.predict(processed, random_seed=random_seed)


def model_init_batch(runner, raw):
    """What RunModel.init takes: DeepMind's model the processed features, as predict gets them;
    the fork's one recycle's slice of them plus the recycled state ('prev')."""
    import numpy as np
    batch = runner.process_features(raw, random_seed=0)
    if not fidelity.is_fork():
        return batch
    one = dict(batch) if runner.multimer_mode else {k: v[:1] for k, v in batch.items()}
    length = one['aatype'].shape[-1]
    one['prev'] = {'prev_msa_first_row': np.zeros([length, 256], np.float16),
                   'prev_pair': np.zeros([length, length, 128], np.float16),
                   'prev_pos': np.zeros([length, 37, 3], np.float16)}
    return one


def _confidence_json(plddt):
    """v2.3.2's alphafold.common.confidence.confidence_json, for packages that lack it."""
    import json
    import numpy as np
    categories = ['D' if p < 50 else 'L' if p < 70 else 'M' if p < 90 else 'H' for p in plddt]
    return json.dumps({'residueNumber': list(range(1, len(plddt) + 1)),
                       'confidenceScore': np.round(np.asarray(plddt, np.float64), 2).tolist(),
                       'confidenceCategory': categories}, indent=None, separators=(',', ':'))


def _pae_json(pae, max_pae):
    """v2.3.2's alphafold.common.confidence.pae_json, for packages that lack it."""
    import json
    import numpy as np
    return json.dumps([{'predicted_aligned_error': np.round(np.asarray(pae, np.float64), 1).tolist(),
                        'max_predicted_aligned_error': max_pae}], indent=None, separators=(',', ':'))


def confidence_json(plddt):
    from alphafold.common import confidence   # imports jax: only the GPU stage calls this
    return getattr(confidence, 'confidence_json', _confidence_json)(plddt)


def pae_json(pae, max_pae):
    from alphafold.common import confidence
    return getattr(confidence, 'pae_json', _pae_json)(pae, max_pae)


def process_features(runner, feats, random_seed, num_res):
    """RunModel.process_features, padded to num_res residues when that is longer than the
    sequence: AlphaFold's own input pipeline with crop_size = num_res, so the real residues get
    exactly the stock features and the padding gets zeros and zero masks."""
    from alphafold.model import features as af
    if runner.multimer_mode or num_res <= int(feats['seq_length'][0]):
        return runner.process_features(feats, random_seed=random_seed)
    cfg, names = af.make_data_config(runner.config, num_res=num_res)
    example = dict(feats)
    if 'deletion_matrix_int' in example:
        example['deletion_matrix'] = example.pop('deletion_matrix_int').astype('float32')
    tf = af.tf   # TensorFlow, or the ColabFold fork's numpy stand-in for it
    graph = tf.Graph()
    with graph.as_default(), tf.device('/device:CPU:0'):
        tf.compat.v1.set_random_seed(random_seed)
        tensors = af.proteins_dataset.np_to_tensor_dict(np_example=example, features=names)
        processed = af.input_pipeline.process_tensors_from_config(tensors, cfg)
    graph.finalize()
    with tf.Session(graph=graph) as sess:
        out = sess.run(processed)
    return {k: v for k, v in out.items() if v.dtype != 'O'}


def confidences_of_real_residues(result, config):
    """pLDDT, pTM and the ranking over the real residues of a cropped padded prediction: DeepMind's
    model scores every residue, padding included, so they are recomputed from the cropped outputs
    with DeepMind's formulas."""
    import numpy as np
    result = dict(result)
    result['plddt'] = confidence.plddt(result['predicted_lddt']['logits'])
    result['ranking_confidence'] = float(np.mean(result['plddt']))
    if 'aligned_confidence_probs' in result:
        head = config.model.heads.predicted_aligned_error
        result['ptm'] = float(confidence.predicted_tm_score(np.asarray(result['aligned_confidence_probs'], np.float64),
                                                            np.linspace(0., head.max_error_bin, head.num_bins - 1)))
    return result


def to_mmcif(prot, file_id):
    """mmCIF text of a Protein, pLDDT in B_iso_or_equiv, one chain per chain index. AlphaFold's own
    protein.to_mmcif where the installed AlphaFold has it (the fork; DeepMind's after v2.3.2), else
    Biopython's MMCIFIO on the same atoms as protein.to_pdb writes them."""
    import numpy as np
    from alphafold.common import protein
    if hasattr(protein, 'to_mmcif'):
        model_type = 'Multimer' if len(np.unique(prot.chain_index)) > 1 else 'Monomer'
        return protein.to_mmcif(prot, file_id=file_id, model_type=model_type)
    return _mmcif_via_biopython(prot, file_id)


def _mmcif_via_biopython(prot, file_id):
    """For AlphaFold without to_mmcif (DeepMind's v2.0 and v2.3.2 in the images)."""
    import io
    from alphafold.common import protein
    from Bio.PDB import MMCIFIO, PDBParser
    structure = PDBParser(QUIET=True).get_structure(file_id, io.StringIO(protein.to_pdb(prot)))
    out = io.StringIO()
    writer = MMCIFIO()
    writer.set_structure(structure)
    writer.save(out)
    return out.getvalue()
