"""Turning the stored search results into AlphaFold's input features.

This is `alphafold.data.pipeline.DataPipeline.process` minus the searches (which
fold_runtime.searches ran and stored in msas/): the same parsers, caps, template featurizer
and feature functions, in the same order, so features.pkl equals the stock one. With --msa the
given A3M is the only MSA (as ColabFold's custom MSA); with --no-templates the template features
are those AlphaFold's featurizer returns when no hit is found. A complex's chain (multimer) has
its templates from hmmsearch on pdb_seqres, as AlphaFold-Multimer's monomer pipeline makes them.
"""
import os

from alphafold.data import pipeline
from alphafold.data.tools import hhsearch

from data_sync.registry import REDUCED_DBS
from fold_runtime import compat


def assemble(target, msa_dir, paths, preset, binaries, max_template_date, templates=True, user_msa=None,
             multimer=False):
    """templates False: no template search ran; user_msa: the file name of a precomputed MSA under
    msa_dir, used instead of the searched ones; multimer: target is a complex's chain."""
    msas = (compat.read_a3m(os.path.join(msa_dir, user_msa)),) if user_msa else _searched_msas(msa_dir, preset)
    if templates:
        template_features = _template_features(target, msa_dir, paths, binaries, max_template_date, multimer)
    else:
        template_features = compat.empty_template_features(target.sequence, multimer)
    sequence_features = pipeline.make_sequence_features(
        sequence=target.sequence, description=target.description, num_res=len(target.sequence))
    msa_features = compat.msa_features(msas)
    return dict(sequence_features, **msa_features, **template_features)


def _searched_msas(msa_dir, preset):
    """(uniref90, bfd, mgnify): the stock pipeline's MSAs, in its order."""
    uniref90 = compat.read_sto(os.path.join(msa_dir, 'uniref90_hits.sto'), compat.UNIREF_MAX_HITS)
    mgnify = compat.read_sto(os.path.join(msa_dir, 'mgnify_hits.sto'), compat.MGNIFY_MAX_HITS)
    if preset == REDUCED_DBS:
        bfd = compat.read_sto(os.path.join(msa_dir, 'small_bfd_hits.sto'), None)
    else:
        bfd = compat.read_a3m(os.path.join(msa_dir, 'bfd_uniref_hits.a3m'))
    return uniref90, bfd, mgnify


def _template_features(target, msa_dir, paths, binaries, max_template_date, multimer):
    if multimer:
        hits_file = 'pdb_hits.sto'
        searcher = compat.hmmsearch(binaries['hmmsearch'], binaries['hmmbuild'], paths['pdb_seqres'])
    else:
        hits_file = 'pdb_hits.hhr'
        searcher = hhsearch.HHSearch(binary_path=binaries['hhsearch'], databases=[paths['pdb70']])
    with open(os.path.join(msa_dir, hits_file)) as f:
        hits = compat.template_hits(searcher, f.read(), target.sequence)
    featurizer = compat.template_featurizer(paths['mmcif_dir'], max_template_date,
                                            binaries['kalign'], paths['obsolete'], hmmsearch_hits=multimer)
    return compat.template_features(featurizer, target.sequence, hits)
