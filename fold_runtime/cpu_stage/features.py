"""Turning the stored search results into AlphaFold's input features.

This is `alphafold.data.pipeline.DataPipeline.process` minus the searches (which
fold_runtime.searches ran and stored in msas/): the same parsers, caps, template featurizer
and feature functions, in the same order, so features.pkl equals the stock one.
"""
import os

from alphafold.data import pipeline
from alphafold.data.tools import hhsearch

from fold_runtime import compat


def assemble(target, msa_dir, paths, preset, binaries, max_template_date):
    uniref90 = compat.read_sto(os.path.join(msa_dir, 'uniref90_hits.sto'), compat.UNIREF_MAX_HITS)
    mgnify = compat.read_sto(os.path.join(msa_dir, 'mgnify_hits.sto'), compat.MGNIFY_MAX_HITS)
    if preset == 'reduced_dbs':
        bfd = compat.read_sto(os.path.join(msa_dir, 'small_bfd_hits.sto'), None)
    else:
        bfd = compat.read_a3m(os.path.join(msa_dir, 'bfd_uniref_hits.a3m'))

    with open(os.path.join(msa_dir, 'pdb_hits.hhr')) as f:
        hhr = f.read()
    searcher = hhsearch.HHSearch(binary_path=binaries['hhsearch'], databases=[paths['pdb70']])
    hits = compat.template_hits(searcher, hhr, target.sequence)
    featurizer = compat.template_featurizer(paths['mmcif_dir'], max_template_date,
                                            binaries['kalign'], paths['obsolete'])
    template_features = compat.template_features(featurizer, target.sequence, hits)

    sequence_features = pipeline.make_sequence_features(
        sequence=target.sequence, description=target.description, num_res=len(target.sequence))
    msa_features = compat.msa_features((uniref90, bfd, mgnify))
    return dict(sequence_features, **msa_features, **template_features)
