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
