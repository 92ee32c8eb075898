"""AlphaFold-Multimer's CPU stage for one complex: searches per unique chain, then AlphaFold's own
pairing and merging.

As pipeline_multimer.DataPipeline does it: chain ids A, B, ... in file order; each unique
sequence is searched once, under msas/<chain_id>/ of its first chain, and its copies reuse that
chain's results; a complex of two or more distinct sequences searches UniProt too, for pairing.
Unlike the stock pipeline, every chain's searches go into one plan for searches.run_all, so the
chains run concurrently within --cpus, and each chain's result goes through the site feature
cache under its own key (its sequence, the run's inputs, the multimer preset and whether it was
searched for pairing), so a chain searched for one complex is not searched again for another:
a chain whose entry is of the other kind (searched for a homomer, wanted for a heteromer, or
the reverse) takes its monomer searches from it, and only UniProt is searched when missing.
The merging is pipeline_multimer.DataPipeline.process itself, given the chains' features.
"""
import contextlib
import logging
import os
import time
from typing import Dict, NamedTuple

from alphafold.data import pipeline_multimer

from data_sync import registry
from fold_runtime import fasta, meta, target_layout
from fold_runtime.cpu_stage import colabfold_search, feature_cache, features, searches, stage
from kit_common import files, locks

log = logging.getLogger(__name__)
UNIPROT_HITS = 'uniprot_hits.sto'


class _Chain(NamedTuple):
    """A unique chain: its first chain id, a monomer Target named as AlphaFold's chain query
    ('chain_<id>'), the meta its cache entry has, that of its entry of the other kind (msa_pairing
    flipped), and its msas/<chain_id>/."""
    chain_id: str
    target: fasta.Target
    wanted: dict
    other_kind: dict
    msa_dir: str


def run(target, tdir, env, wanted):
    """Write tdir/features.pkl for a complex (target.chains); returns the timings."""
    opts = env.opts
    work_dir = stage.start_work(tdir, wanted)
    started = time.time()
    paired = len({c.sequence for c in target.chains}) > 1
    chains = [_unique_chain(target, c, env, tdir, paired) for c in _first_of_each_sequence(target)]
    log.info('%s: complex of %d chains (%d unique, %d residues), %s, %s searches on %d cpu%s%s', target.name,
             len(target.chains), len(chains), target.num_residues, opts.db_preset,
             'serial' if opts.serial else 'concurrent', opts.cpus, '' if opts.templates else ', no templates',
             '' if paired else ', no MSA pairing (one distinct sequence)')
    chain_feats = {c.chain_id: _from_cache(c, opts.feature_cache) for c in chains}
    missing = [c for c in chains if chain_feats[c.chain_id] is None]
    with contextlib.ExitStack() as held:   # first the chains no concurrent task is searching ...
        mine = [c for c in missing if _lock(held, env, c, wait=False)]
        search_times, assemble_s = _search_and_store(mine, chain_feats, env, tdir, work_dir, paired)
    rest = [c for c in missing if c not in mine]
    with contextlib.ExitStack() as held:   # ... then the others' entries, searching any they failed to make
        for c in rest:
            _lock(held, env, c, wait=True)
            chain_feats[c.chain_id] = _from_cache(c, opts.feature_cache)
        failed = [c for c in rest if chain_feats[c.chain_id] is None]
        more_times, more_s = _search_and_store(failed, chain_feats, env, tdir, work_dir, paired)
    search_times.update(more_times)
    # 'cache' unless a search ran for it here (features from cached searches are assembled anyway).
    searched = {k.split(':')[0] for k in search_times}
    sources = {c.chain_id: 'cpu_stage' if c.chain_id in searched else 'cache' for c in chains}
    t0 = time.time() - assemble_s - more_s   # assembly: the chains' features and the merge
    feats = _merge(target, chain_feats, env, tdir, work_dir)
    files.write_json(os.path.join(tdir, meta.META_FILE),
                     dict(wanted, features_source='cpu_stage', chains=_chain_records(target, chains, sources)))
    return stage.finish_work(target, tdir, feats, search_times, t0, started)


def _first_of_each_sequence(target):
    seen = set()
    return [c for c in target.chains if not (c.sequence in seen or seen.add(c.sequence))]


def _unique_chain(target, chain, env, tdir, paired):
    query = fasta.Target('%s_%s' % (target.name, chain.chain_id), 'chain_' + chain.chain_id, chain.sequence,
                         target.fasta_path)
    msa_dir = os.path.join(tdir, target_layout.MSAS, chain.chain_id)
    return _Chain(chain.chain_id, query, stage.wanted_meta(query, env, msa_pairing=paired),
                  stage.wanted_meta(query, env, msa_pairing=not paired), msa_dir)


def _from_cache(chain, cache):
    """The chain's features from the site cache (its msas/<chain_id>/ filled too), or None; on a
    miss, msas/<chain_id>/ gets the monomer searches of the chain's entry of the other kind."""
    if not cache:
        return None
    feats = feature_cache.fetch_msas(cache, chain.wanted, chain.target, chain.msa_dir)
    if feats is not None:
        log.info('  chain %s: searches and features from the shared cache %s', chain.chain_id, cache)
        return feats
    if feature_cache.fetch_msas(cache, chain.other_kind, chain.target, chain.msa_dir) is not None:
        if 'msa_pairing' not in chain.wanted:   # as AlphaFold: no UniProt search without pairing
            files.remove(os.path.join(chain.msa_dir, UNIPROT_HITS))
        log.info('  chain %s: its monomer searches from the shared cache %s', chain.chain_id, cache)
    return None


def _lock(held, env, chain, wait):
    """Lock the chain's sequence for this run (held until the ExitStack closes); False when another
    run holds it and wait is False. Always True outside a batch: one run has nobody to share with."""
    if not (env.chain_locks and env.opts.feature_cache):
        return True
    lock_dir = os.path.join(env.chain_locks, meta.sequence_sha256(chain.target.sequence))
    files.make_dirs(lock_dir)
    try:
        held.enter_context(locks.exclusive(lock_dir, 'searching chain %s' % chain.target.name, wait=wait))
    except locks.Busy:
        return False
    return True


def _search_and_store(chains, chain_feats, env, tdir, work_dir, paired):
    """Search the chains, fill chain_feats with their features and store them in the cache;
    (wall seconds per search, seconds spent assembling)."""
    if not chains:
        return {}, 0.0
    opts = env.opts
    search_times = _search(chains, env, tdir, work_dir, paired)
    t0 = time.time()
    for c in chains:
        chain_feats[c.chain_id] = features.assemble(c.target, c.msa_dir, env.paths, opts.db_preset, env.binaries,
                                                    opts.max_template_date, opts.templates, _colabfold_a3m(opts),
                                                    multimer=True)
        if opts.feature_cache:
            feature_cache.store(opts.feature_cache, c.wanted, chain_feats[c.chain_id], c.msa_dir)
    return search_times, time.time() - t0


def _search(chains, env, tdir, work_dir, paired):
    """Every chain's searches as one plan, its CPUs shared among the chains; wall seconds per search."""
    opts = env.opts
    plan = []
    for c in chains:
        query = os.path.join(work_dir, c.chain_id + '.fasta')
        files.write_text(query, '>%s\n%s\n' % (c.target.description, c.target.sequence))
        files.make_dirs(c.msa_dir)
        files.remove_debris(c.msa_dir)
        plan += searches.chain_plan(env.paths, opts.db_preset, max(1, opts.cpus // len(chains)), opts.templates,
                                    c.chain_id, query, paired, env.shards, opts.msa_mode, opts.mmseqs_gpu)
    return searches.run_all(plan, env.binaries, None, os.path.join(tdir, target_layout.MSAS), work_dir,
                            timeout=opts.timeout, serial=opts.serial)


def _colabfold_a3m(opts):
    """--msa-mode mmseqs2: ColabFold's A3M is a chain's only MSA (the unpaired one); UniProt's hits
    still pair the chains, as AlphaFold-Multimer pairs them."""
    return colabfold_search.A3M_FILE if opts.msa_mode == registry.MMSEQS2 else None


class _ChainFeatures(object):
    """pipeline_multimer.DataPipeline's monomer pipeline, answering with the features the kit made
    for each chain (it asks with that chain's msas/<chain_id>/)."""

    def __init__(self, chain_feats: Dict[str, dict]):
        self.chain_feats = chain_feats

    def process(self, input_fasta_path, msa_output_dir):
        return dict(self.chain_feats[os.path.basename(msa_output_dir)])


def _merge(target, chain_feats, env, tdir, work_dir):
    """AlphaFold's own multimer process on the chains' features: the chain id map (written to
    msas/chain_id_map.json), the UniProt features for pairing, read from the stored
    uniprot_hits.sto, then convert_monomer_features, add_assembly_features, pair_and_merge, pad_msa."""
    complex_fasta = os.path.join(work_dir, 'complex.fasta')
    files.write_text(complex_fasta, ''.join('>%s\n%s\n' % (c.description, c.sequence) for c in target.chains))
    merger = pipeline_multimer.DataPipeline(
        monomer_data_pipeline=_ChainFeatures(chain_feats), jackhmmer_binary_path=env.binaries['jackhmmer'],
        uniprot_database_path=env.paths['uniprot'], use_precomputed_msas=True)
    return merger.process(input_fasta_path=complex_fasta, msa_output_dir=os.path.join(tdir, target_layout.MSAS))


def _chain_records(target, chains, sources):
    """features.meta.json's record of every chain: its id, description, sequence, and where its
    features came from (a homomer copy: msas_of names the chain whose results it shares)."""
    first = {c.target.sequence: c.chain_id for c in chains}
    return [{'chain_id': c.chain_id, 'description': c.description, 'sequence_sha256': meta.sequence_sha256(c.sequence),
             'length': len(c.sequence), 'msas_of': first[c.sequence], 'features_source': sources[first[c.sequence]]}
            for c in target.chains]
