"""The CPU stage: searches run concurrently, then features.pkl and its meta, per target.

Imports no jax and loads no weights: it runs on CPU nodes.
"""
import json
import logging
import os
import shutil
import time

from data_sync import registry
from data_sync.layout import MANIFEST_ID_FILE, read_id
from fold_runtime import meta, progress, target_layout
from fold_runtime.cpu_stage import (binaries, colabfold_search, databases, feature_cache, mmseqs_gpu,
                                    searches, user_msa as user_msas)
from fold_runtime.options import TOOLS, resolve_data_dir
from kit_common import files, locks
from kit_common.errors import EXIT_MISMATCH, EXIT_MISSING, KitError

log = logging.getLogger(__name__)


def tools_for(preset, multimer=False):
    """reduced_dbs searches small BFD with jackhmmer, so it needs no HHblits; multimer searches
    templates with hmmsearch and hmmbuild, monomers with HHsearch; registry.MMSEQS2 (--msa-mode
    mmseqs2) runs MMseqs2 instead of the MSA searches, and templates as its preset does."""
    if preset == registry.MMSEQS2:   # multimer: UniProt for pairing, templates by hmmsearch
        return ['hmmsearch', 'hmmbuild', 'jackhmmer', 'kalign', 'mmseqs'] if multimer else ['hhsearch', 'kalign', 'mmseqs']
    unused = {'mmseqs', 'hhsearch'} if multimer else {'mmseqs', 'hmmsearch', 'hmmbuild'}
    if preset == registry.REDUCED_DBS:
        unused.add('hhblits')
    return [t for t in TOOLS if t not in unused]


def search_set(opts):
    """The databases and tools a run searches with: its --db-preset's, or registry.MMSEQS2's."""
    return registry.MMSEQS2 if opts.msa_mode == registry.MMSEQS2 else opts.db_preset


class Environment(object):
    """What a run resolves once for all its targets, on the node that runs it: the data
    directory (node-local when staged), tools, database paths and the wanted meta."""

    def __init__(self, opts, chain_locks=None, colabfold_a3m=None):
        """chain_locks: a directory where concurrent runs (a batch's tasks) lock the chains they
        search, so that a chain shared by complexes is searched by one of them only. colabfold_a3m:
        --msa-mode mmseqs2 in a batch, a function of this Environment giving the target's A3M from
        the batch's MMseqs2 run of many proteins, instead of a run of its own."""
        from fold_runtime import compat
        compat.fidelity.apply_data()   # DeepMind's data semantics, before any pipeline object exists
        progress.configure(opts.progress_interval)
        self.opts, self.chain_locks, self.colabfold_a3m = opts, chain_locks, colabfold_a3m
        if opts.multimer and not compat.HAS_MULTIMER:
            raise KitError('--model-preset multimer needs AlphaFold 2.1 or later; the installed AlphaFold is %s %s'
                           % compat.fidelity.distribution(), 'load an AlphaFold 2.3 install of the kit', EXIT_MISSING)
        self.data_dir = resolve_data_dir(opts.data_dir)
        self.manifest_id = read_id(os.path.join(self.data_dir, MANIFEST_ID_FILE)) or None if self.data_dir else None
        searched = search_set(opts)
        self.binaries = {t: binaries.resolve(t, opts.binary_paths.get(t)) for t in tools_for(searched, opts.multimer)}
        self.paths = databases.preset_paths(self.data_dir, searched, compat.DB_VERSION, opts.multimer)
        if opts.mmseqs_gpu:   # before any search: a GPU, padded databases, MMseqs2 with GPU support
            mmseqs_gpu.require(self.binaries['mmseqs'], [self.paths['colabfold_uniref'], self.paths['colabfold_envdb']])
        self.shards = databases.shards(self.data_dir)
        self.fingerprint = databases.fingerprint(self.data_dir, searched, compat.DB_VERSION, opts.multimer)
        self.tool_versions = {t: binaries.version(p) for t, p in self.binaries.items()}
        self.alphafold = compat.fidelity.distribution()
        self.semantics = compat.SEMANTICS


def target_dir(output_dir, target):
    return os.path.join(output_dir, target.name)


def run_target(target, output_dir, env, msa=None):
    """Make <output>/<target>/features.pkl, or reuse it when its meta matches. Returns timings.
    msa: the target's checked user_msa.UserMsa (--msa), or None to search.
    One run per target at a time: a second waits for the first (then reuses its features)."""
    tdir = target_dir(output_dir, target)
    files.make_dirs(tdir)
    with locks.exclusive(tdir, 'alphafold-msa for %s' % target.name):
        return _run_locked(target, tdir, env, msa)


def wanted_meta(target, env, msa_sha256=None, msa_pairing=False):
    """The meta a target's (or a complex's chain's) features must have to be reused."""
    opts = env.opts
    colabfold = sorted(registry.COLABFOLD) if opts.msa_mode == registry.MMSEQS2 else None
    return meta.build(target, opts.db_preset, opts.max_template_date, env.fingerprint, env.manifest_id,
                      env.tool_versions, env.alphafold, env.semantics, templates=opts.templates,
                      msa_sha256=msa_sha256, multimer=opts.multimer, msa_pairing=msa_pairing,
                      colabfold_databases=colabfold, mmseqs_gpu=opts.mmseqs_gpu)


def _run_locked(target, tdir, env, msa):
    opts = env.opts
    wanted = wanted_meta(target, env, msa.sha256 if msa else None)
    if _reusable(target, tdir, wanted, opts.overwrite):
        return {}
    if target.chains:
        from fold_runtime.cpu_stage import multimer
        return multimer.run(target, tdir, env, wanted)
    if opts.feature_cache and feature_cache.fetch(opts.feature_cache, wanted, target, tdir):
        log.info('%s: features from the shared cache %s (no CPU stage needed)', target.name, opts.feature_cache)
        return {}
    work_dir = start_work(tdir, wanted)
    msa_dir = os.path.join(tdir, target_layout.MSAS)
    started = time.time()
    query = os.path.join(work_dir, 'query.fasta')
    files.write_text(query, '>%s\n%s\n' % (target.description, target.sequence))
    log.info('%s: %d residues, %s, %s searches on %d cpu%s%s', target.name, len(target.sequence),
             'msa-mode ' + opts.msa_mode if opts.msa_mode == registry.MMSEQS2 else opts.db_preset,
             'serial' if opts.serial else 'concurrent', opts.cpus, '' if opts.templates else ', no templates',
             ', MSA from %s instead of the MSA searches' % msa.path if msa else '')
    msa_name = None
    if msa:
        msa_name = user_msas.FILE_NAME
        files.write_text(os.path.join(msa_dir, msa_name), msa.text)
    elif opts.msa_mode == registry.MMSEQS2:
        msa_name = colabfold_search.A3M_FILE   # ColabFold's A3M is the only MSA, as --msa's is
        if env.colabfold_a3m and not os.path.exists(os.path.join(msa_dir, msa_name)):
            # the search planned below is then skipped: its output is there
            files.write_text(os.path.join(msa_dir, msa_name), env.colabfold_a3m(env))
    plan = searches.plan(env.paths, opts.db_preset, opts.cpus, opts.templates, msa_name, opts.msa_mode,
                         env.shards, opts.mmseqs_gpu)
    search_times = searches.run_all(plan, env.binaries, query, msa_dir, work_dir,
                                    timeout=opts.timeout, serial=opts.serial)
    t0 = time.time()
    from fold_runtime.cpu_stage import features
    feats = features.assemble(target, msa_dir, env.paths, opts.db_preset, env.binaries,
                              opts.max_template_date, opts.templates, msa_name)
    if opts.feature_cache:
        feature_cache.store(opts.feature_cache, wanted, feats, msa_dir)
    return finish_work(target, tdir, feats, search_times, t0, started)


def _reusable(target, tdir, wanted, overwrite):
    """True when tdir's features.pkl was made from the wanted inputs; clears tdir with overwrite,
    and refuses results whose inputs do not match or cannot be checked."""
    features_path = os.path.join(tdir, target_layout.FEATURES)
    if overwrite:
        _clear(tdir)
        return False
    stored = meta.load(tdir)
    if stored is None and (os.path.exists(features_path) or os.path.isdir(os.path.join(tdir, target_layout.MSAS))):
        raise KitError('%s holds results without %s, so their inputs cannot be checked' % (tdir, meta.META_FILE),
                       'rerun with --overwrite to recompute them, or use another --output-dir', EXIT_MISMATCH)
    if stored is None:
        return False
    meta.check_match(tdir, stored, wanted)
    if os.path.exists(features_path):
        log.info('%s: features.pkl matches its inputs, reusing it', target.name)
        return True
    log.info('%s: resuming an interrupted CPU stage', target.name)
    return False


def start_work(tdir, wanted):
    """Record the meta, clear what a killed run left, and return a fresh work directory."""
    msa_dir = os.path.join(tdir, target_layout.MSAS)
    files.write_json(os.path.join(tdir, meta.META_FILE), dict(wanted, features_source='cpu_stage'))
    files.make_dirs(msa_dir)
    files.remove_debris(tdir, msa_dir)
    work_dir = os.path.join(tdir, '.work')
    files.remove_tree(work_dir)
    files.make_dirs(work_dir)
    return work_dir


def finish_work(target, tdir, feats, search_times, assemble_started, started):
    """Write features.pkl and the timings, remove the work directory; the timings."""
    features_path = os.path.join(tdir, target_layout.FEATURES)
    files.write_pickle(features_path, feats)
    timings = {'search_' + k: v for k, v in search_times.items()}
    timings['assemble_features'] = round(time.time() - assemble_started, 3)
    timings['features'] = round(time.time() - started, 3)
    merge_timings(tdir, timings)
    shutil.rmtree(os.path.join(tdir, '.work'), ignore_errors=True)
    log.info('%s: wrote %s (%.1f s)', target.name, features_path, timings['features'])
    return timings


def merge_timings(tdir, timings):
    """timings.json is shared by both stages; each adds its own keys."""
    path = os.path.join(tdir, target_layout.TIMINGS)
    merged = {}
    if os.path.exists(path):
        with open(path) as f:
            merged = json.load(f)
    merged.update(timings)
    files.write_json(path, merged)


def _clear(tdir):
    """--overwrite: a symlinked msas/ (a "precomputed MSAs" habit) is replaced by a directory of
    its own, so the searches run again and never write into what the link points to."""
    for name in (target_layout.FEATURES, meta.META_FILE, target_layout.TIMINGS, target_layout.MSAS):
        files.remove_tree(os.path.join(tdir, name))
