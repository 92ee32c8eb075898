"""The stock AlphaFold code paths that parity tests and benchmarks compare against.

This is what run_alphafold.py (v2.3.2) builds, on the same databases and binaries.
"""
import os
import shutil

from alphafold.data import pipeline, templates
from alphafold.data.tools import hhsearch

from data_sync import registry


def data_pipeline(data_dir, preset):
    paths = {role: os.path.join(data_dir, rel) for role, rel in registry.role_paths(preset).items()}
    return pipeline.DataPipeline(
        jackhmmer_binary_path=shutil.which('jackhmmer'),
        hhblits_binary_path=shutil.which('hhblits'),
        uniref90_database_path=paths['uniref90'],
        mgnify_database_path=paths['mgnify'],
        bfd_database_path=paths.get('bfd'),
        uniref30_database_path=paths.get('uniref30'),
        small_bfd_database_path=paths.get('small_bfd'),
        template_searcher=hhsearch.HHSearch(binary_path=shutil.which('hhsearch'),
                                            databases=[paths['pdb70']]),
        template_featurizer=templates.HhsearchHitFeaturizer(
            mmcif_dir=paths['mmcif_dir'], max_template_date='2100-01-01', max_hits=20,
            kalign_binary_path=shutil.which('kalign'), release_dates_path=None,
            obsolete_pdbs_path=paths['obsolete']),
        use_small_bfd=preset == 'reduced_dbs',
        use_precomputed_msas=False)


def stock_features(data_dir, preset, fasta_path, msa_dir):
    os.makedirs(msa_dir, exist_ok=True)
    return data_pipeline(data_dir, preset).process(input_fasta_path=fasta_path, msa_output_dir=msa_dir)


def stock_predict_structure(features, data_dir, model_names, random_seed, num_recycle,
                            config_overrides, num_preset_models=5):
    """run_alphafold.py's predict_structure loop (v2.3.2): a RunModel per model, process_features,
    predict, rank by ranking_confidence, relax the best with AmberRelaxation.

    Returns (ranked order, {model: unrelaxed Protein}, relaxed PDB string of the best).
    """
    import numpy as np
    from alphafold.common import protein, residue_constants
    from alphafold.model import config, data, model
    from alphafold.relax import relax
    runners = {}
    for name in model_names:
        cfg = config.model_config(name)
        cfg.data.eval.num_ensemble = 1
        cfg.model.num_recycle = num_recycle
        cfg.data.common.num_recycle = num_recycle
        cfg.update_from_flattened_dict(dict(config_overrides))
        runners[name] = model.RunModel(cfg, data.get_model_haiku_params(model_name=name, data_dir=data_dir))
    confidences, unrelaxed = {}, {}
    for name, runner in runners.items():
        model_index = int(name.split('_')[1]) - 1   # position within the preset
        seed = model_index + random_seed * num_preset_models
        processed = runner.process_features(features, random_seed=seed)
        result, _ = runner.predict(processed, random_seed=seed)
        confidences[name] = result['ranking_confidence']
        b_factors = np.repeat(result['plddt'][:, None], residue_constants.atom_type_num, axis=-1)
        unrelaxed[name] = protein.from_prediction(features=processed, result=result, b_factors=b_factors,
                                                  remove_leading_feature_dimension=True)
    ranked = [n for n, _ in sorted(confidences.items(), key=lambda x: x[1], reverse=True)]
    relaxer = relax.AmberRelaxation(max_iterations=0, tolerance=2.39, stiffness=10.0,
                                    exclude_residues=[], max_outer_iterations=3, use_gpu=False)
    relaxed_pdb, _, _ = relaxer.process(prot=unrelaxed[ranked[0]])
    return ranked, unrelaxed, relaxed_pdb
