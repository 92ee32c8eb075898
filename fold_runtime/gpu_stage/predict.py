"""The GPU stage: predict from a verified features.pkl, rank, relax only the best.

Mirrors run_alphafold.py's predict_structure (v2.3.2): per model (and per seed, --num-seeds),
process_features and predict with seed model_index + random_seed * num_models; rank by
ranking_confidence; relax the chosen models with AmberRelaxation; write AlphaFold's files.
Differences are additions only: a model subset, atomic writes, compile time split from predict time, relax failures that keep the
unrelaxed outputs, mmCIF files, scores.json and plots, and models kept across runs: a model
already in the directory from the same features and options is not predicted again, and the
ranking covers every model made from these features (records.py).
"""
import dataclasses
import logging
import os
import pickle
import stat
import time
from typing import Optional

import numpy as np

from fold_runtime import compat, fasta, meta, progress, target_layout
from fold_runtime.cpu_stage.stage import merge_timings
from fold_runtime.gpu_stage import outputs, padding
from kit_common import digests, files, locks
from kit_common.errors import EXIT_GPU, EXIT_INPUT, EXIT_MISMATCH, EXIT_RELAX, KitError

log = logging.getLogger(__name__)
# run_alphafold.py's relaxation settings.
RELAX = dict(max_iterations=0, tolerance=2.39, stiffness=10.0, exclude_residues=[],
             max_outer_iterations=3)


def check_preset(tdir, feats, preset):
    """Complex features go with --model-preset multimer, and only they do."""
    if ('asym_id' in feats) != (preset == 'multimer'):
        kind = 'a complex\'s (multimer)' if 'asym_id' in feats else 'a monomer\'s'
        raise KitError('%s/features.pkl holds %s features, which --model-preset %s cannot predict'
                       % (tdir, kind, preset), 'pass --model-preset %s' % (
                           'multimer' if 'asym_id' in feats else 'monomer_ptm (or monomer, monomer_casp14)'),
                       EXIT_INPUT)


def load_features(tdir, expected=None):
    """features.pkl after checking it against features.meta.json (and `expected` meta keys)."""
    stored = meta.load(tdir)
    path = os.path.join(tdir, target_layout.FEATURES)
    if stored is None:
        raise KitError('%s has no %s, so its features cannot be checked' % (tdir, meta.META_FILE),
                       'run the CPU stage first: alphafold-msa with the same --fasta and --output-dir',
                       EXIT_MISMATCH)
    diffs = meta.differences(stored, dict(stored, semantics=compat.SEMANTICS, **(expected or {})))
    if diffs:
        raise KitError('features in %s were made from other inputs:\n    %s' % (tdir, '\n    '.join(diffs)),
                       'rerun alphafold-msa --overwrite for this target, or check --fasta/--db-preset',
                       EXIT_MISMATCH)
    if not os.path.exists(path):
        raise KitError('%s is missing' % path, 'run alphafold-msa for this target first', EXIT_MISMATCH)
    fasta.check_model_length(os.path.basename(tdir), stored['sequence_length'], os.path.join(tdir, meta.META_FILE))
    try:
        f = open(path, 'rb')
    except OSError as exc:
        raise _unreadable(path, exc)
    with f:
        _check_owner(f, path)
        try:
            feats = pickle.load(f)
            sequence = feature_sequence(feats)
        except Exception as exc:
            raise _unreadable(path, exc)
    if meta.sequence_sha256(sequence) != stored['sequence_sha256']:
        raise KitError('%s holds another sequence than %s records' % (path, meta.META_FILE),
                       'recreate it with alphafold-msa --overwrite', EXIT_MISMATCH)
    return feats, stored


def _unreadable(path, exc):
    return KitError('%s is unreadable (%s: %s)' % (path, type(exc).__name__, exc),
                    'recreate it with alphafold-msa --overwrite', EXIT_MISMATCH)


def _check_owner(f, path):
    """features.pkl is a pickle, and reading a pickle can run code: only a file this user (or root)
    owns and nobody else may write is read, so no group member can plant one between the stages
    (the feature cache's rule). Checked on the open file: a rename after the check changes nothing."""
    info = os.fstat(f.fileno())
    if info.st_uid not in (os.geteuid(), 0):
        problem, fix = 'belongs to uid %d, not to you' % info.st_uid, ''
    elif info.st_mode & 0o022:
        problem, fix = 'may be written by others (mode %03o)' % stat.S_IMODE(info.st_mode), 'chmod go-w it, or '
    else:
        return
    raise KitError('%s %s; it is a pickle, which can run code when read, so only your own features are read'
                   % (path, problem), fix + 'rerun alphafold-msa for this target into a directory of your own; '
                   'if you trust its owner, copy the target directory (the copy is yours) and predict from the copy',
                   EXIT_INPUT)


def feature_sequence(feats):
    """The sequence features hold: a monomer's, or a complex's chains joined by ':' in chain order
    (multimer features keep no sequence string, so it is read from aatype and asym_id)."""
    if 'asym_id' not in feats:
        return feats['sequence'][0].decode()
    from alphafold.common import residue_constants
    letters = np.array(list(residue_constants.restypes_with_x))[np.asarray(feats['aatype'])]
    asym = np.asarray(feats['asym_id'])
    return ':'.join(''.join(letters[asym == chain]) for chain in sorted(set(asym.tolist())))


def num_residues(feats):
    return len(feats['aatype']) if 'asym_id' in feats else int(feats['seq_length'][0])


class Models(object):
    """The chosen models' runners, weights loaded once for every target of the process."""

    def __init__(self, opts, data_dir):
        from fold_runtime.gpu_stage import weights
        self.names = weights.select_models(opts.model_preset, opts.models)
        self.num_preset_models = len(weights.PRESET_MODELS[opts.model_preset])
        # run_alphafold.py names multimer predictions <model>_pred_<k> even with one per model.
        self.pred_names = opts.model_preset == 'multimer' or opts.num_seeds > 1
        note = weights.test_weights_note(data_dir)
        if note:
            log.info('*** USING RANDOM TEST WEIGHTS from %s: %s ***',
                     os.path.join(data_dir, 'params'), note.get('note', ''))
        self.runners = {}
        for name in self.names:
            t0 = time.time()
            self.runners[name] = weights.load_runner(data_dir, name, opts.model_preset, opts.num_recycle)
            log.info('loaded %s weights in %.1f s', name, time.time() - t0)
        _share_executables(self.runners)


def predict_target(tdir, feats, session):
    """Every chosen model on one target, then ranking, relaxation and AlphaFold's outputs. One
    GPU stage per target at a time: a second waits for the first."""
    with locks.exclusive(tdir, 'alphafold-predict for %s' % os.path.basename(tdir)):
        return _finish_locked(_predict_locked(tdir, feats, session))


def predict_models(tdir, feats, session):
    """The predictions and their ranking (the accelerator's part); finish() does the rest. The
    batch worker hands the returned Ranking to its relax pool and predicts its next target (its
    claim on the target keeps other workers out between the two locks)."""
    with locks.exclusive(tdir, 'alphafold-predict for %s' % os.path.basename(tdir)):
        return _predict_locked(tdir, feats, session)


@dataclasses.dataclass
class Ranking(object):
    """What finish() needs of a target's predictions: picklable, so a relax process can take it.
    fresh: this run's unrelaxed Proteins; feats: only when plots are drawn."""
    tdir: str
    ranked: list
    confidences: dict
    label: str
    scores: dict
    fresh: dict
    models_to_relax: str
    use_gpu_relax: bool
    feats: Optional[dict]
    timings: dict


def _predict_locked(tdir, feats, session):
    """Predicts the models this run asks for that the directory does not already hold, then ranks
    every model made from the same features."""
    from fold_runtime.gpu_stage import records, weights
    opts, models = session.opts, session.models
    length = num_residues(feats)
    # Complexes run at their own length: the buckets pad monomer features only.
    num_res = length if 'asym_id' in feats else padding.bucket(length, session.buckets)
    timings = {'padded_length': num_res}
    digest = records.features_digest(tdir)
    tools = meta.load(tdir).get('tools')   # load_features has checked the meta
    fresh = {}
    for name, model, seed in predictions(models, opts.num_seeds, opts.random_seed):
        runner = models.runners[model]
        wanted = records.made_with(runner, seed, num_res, weights.params_path(session.data_dir, model), digest,
                                   tools)
        if not opts.overwrite and records.finished(tdir, name, wanted, opts.result_pkl):
            log.info('  %s: kept: its files exist and were made from these features with these options '
                     '(--overwrite predicts it again)', name)
            continue
        try:
            fresh[name], scores = _predict_model(tdir, name, runner, feats, session, seed, num_res, timings)
        except ValueError as exc:
            raise weights.shape_error(exc, weights.params_path(session.data_dir, model)) or exc
        records.save_model(tdir, name, dict(wanted, scores=scores))
    present = records.same_features(tdir, digest, models.pred_names)
    scores = {name: r['scores'] for name, r in present.items()}
    confidences = {name: s['ranking_confidence'] for name, s in scores.items()}
    ranked = sorted(confidences, key=lambda n: confidences[n], reverse=True)
    if len(present) > len(models.names) * opts.num_seeds:
        log.info('  ranking %d models made from these features (%s), this run\'s and earlier runs\'',
                 len(ranked), ', '.join(ranked))
    label = 'iptm+ptm' if any(s['iptm'] is not None for s in scores.values()) else 'plddts'
    return Ranking(tdir, ranked, confidences, label, scores, fresh, opts.models_to_relax, session.use_gpu_relax,
                   feats if opts.plots else None, timings)


def finish(job):
    """Relaxation and the target's ranked files, scores and plots, from predict_models' Ranking.
    Returns (ranked names, timings, scores)."""
    with locks.exclusive(job.tdir, 'relaxing %s' % os.path.basename(job.tdir)):
        return _finish_locked(job)


def _finish_locked(job):
    tdir, ranked, timings = job.tdir, job.ranked, job.timings
    to_relax = {'best': ranked[:1], 'all': ranked, 'none': []}[job.models_to_relax]
    relax_metrics, failed = relax(tdir, to_relax, job.fresh, job.use_gpu_relax, timings)
    outputs.ranked_outputs(tdir, ranked, job.confidences, job.label, set(relax_metrics) - set(failed))
    outputs.scores_json(tdir, ranked, job.scores)
    if job.feats is not None:
        from fold_runtime.gpu_stage import plots
        plots.write_all(tdir, ranked, job.scores, job.feats)
    if job.models_to_relax != 'none':
        files.write_json(os.path.join(tdir, target_layout.RELAX_METRICS), relax_metrics)
    merge_timings(tdir, {k: round(v, 3) for k, v in timings.items()})
    if failed:
        raise KitError('relaxation failed for %s (%s); ranked_*.pdb hold the unrelaxed models'
                       % (', '.join(failed), relax_metrics[failed[0]]['error']),
                       'rerun with --no-gpu-relax, or --models-to-relax none', EXIT_RELAX)
    return ranked, timings, job.scores


def predictions(models, num_seeds, random_seed):
    """(prediction name, model name, seed) of each prediction, as run_alphafold.py v2.3.2 does for
    multimer (the kit for any preset): num_seeds runners per model of the preset, named
    <model>_pred_<k>, and runner i of all n gets seed i + random_seed * n. A monomer run with one
    seed keeps the model's own name and seed, as run_alphafold.py's. i counts over the whole
    preset, so a --models subset gets the seeds a run of every model would."""
    from fold_runtime.gpu_stage import weights
    total = models.num_preset_models * num_seeds
    for model in models.names:
        for k in range(num_seeds):
            name = '%s_pred_%d' % (model, k) if models.pred_names else model
            yield name, model, weights.preset_index(model) * num_seeds + k + random_seed * total


def _predict_model(tdir, name, runner, feats, session, seed, num_res, timings):
    """One prediction: features processed (padded to num_res), predicted, cropped back, its files
    written. Returns the unrelaxed Protein and the prediction's scores."""
    from alphafold.common import protein, residue_constants
    clock = session.clock
    length = num_residues(feats)
    t0 = time.time()
    processed = compat.process_features(runner, feats, seed, num_res)
    timings['process_features_%s' % name] = time.time() - t0
    compile_before, compiles_before = clock.snapshot()
    t0 = time.time()
    try:
        with progress.Heartbeat(lambda: '%s: compiling and predicting (%.0f s of it compiling)'
                                % (name, clock.snapshot()[0] - compile_before)):
            result = padding.crop_result(compat.predict(runner, processed, seed), length, num_res)
    except Exception as exc:
        raise out_of_memory_error(exc) or exc
    if num_res != length:
        processed = padding.crop_features(processed, length)
        result = compat.confidences_of_real_residues(result, runner.config)
    total = time.time() - t0
    compile_s, compiles = (a - b for a, b in zip(clock.snapshot(), (compile_before, compiles_before)))
    timings.update({'predict_and_compile_%s' % name: total, 'compile_%s' % name: compile_s,
                    'compiles_%s' % name: compiles,
                    'predict_%s' % name: max(0.0, total - compile_s)})
    b_factors = np.repeat(np.asarray(result['plddt'])[:, None], residue_constants.atom_type_num, axis=-1)
    unrelaxed = protein.from_prediction(features=processed, result=result, b_factors=b_factors,
                                        remove_leading_feature_dimension=not runner.multimer_mode)
    outputs.model_outputs(tdir, name, result, unrelaxed, session.opts.result_pkl)
    scores = outputs.model_scores(result, seed, runner.config.model.num_recycle)
    log.info('  %s: mean pLDDT %.2f%s%s, ranking confidence %.2f, %.1f s (compile %.1f s)', name,
             scores['mean_plddt'], '' if scores['ptm'] is None else ', pTM %.3f' % scores['ptm'],
             '' if scores['iptm'] is None else ', ipTM %.3f' % scores['iptm'], scores['ranking_confidence'],
             total, compile_s)
    return unrelaxed, scores


def _share_executables(runners):
    """Models with identical configs (model_1/model_2 without their differing MSA depths, ...)
    differ only in weights, which jit takes as an argument: one jitted function serves them all,
    so each shape compiles once per process, not once per model."""
    seen = []
    for runner in runners.values():
        cfg = runner.config.to_dict()
        twin = next((r for c, r in seen if c == cfg), None)
        if twin is None:
            seen.append((cfg, runner))
        else:
            runner.apply = twin.apply


def relax(tdir, names, fresh, use_gpu, timings):
    """AmberRelaxation of the chosen models: relaxed_<m>.pdb and .cif, and their metrics. A model
    relaxed by an earlier run from the same unrelaxed model is kept; relaxed files of models no
    longer chosen are removed (one job that ran every model would not have them). A failure is
    recorded, not fatal to the outputs. fresh: the Proteins predicted in this run; earlier runs'
    are read from their PDB files, which relaxation writes out and reads back anyway."""
    from fold_runtime.gpu_stage import records
    stored = records.load(tdir)
    metrics, failed, relaxer = {}, [], None
    for name in stored:
        if name not in names:
            for ext in ('pdb', 'cif'):
                files.remove(os.path.join(tdir, '%s.%s' % (target_layout.relaxed(name), ext)))
    for name in names:
        if name not in fresh and records.relaxed_is_current(tdir, name, stored[name]):
            metrics[name] = stored[name]['relaxed']['metrics']
            log.info('  relaxed %s: kept (relaxed from the same model by an earlier run)', name)
            continue
        relaxer = relaxer or _relaxer(use_gpu)
        t0 = time.time()
        try:
            with progress.Heartbeat('relaxing %s (OpenMM, %s)' % (name, 'GPU' if use_gpu else 'CPU')):
                pdb, _, violations = relaxer.process(prot=fresh[name] if name in fresh else _unrelaxed(tdir, name))
        except Exception as exc:  # OpenMM raises many types; the outputs must survive all of them
            metrics[name] = {'error': '%s: %s' % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else '')}
            failed.append(name)
            log.info('  relax %s FAILED: %s', name, metrics[name]['error'])
            continue
        timings['relax_%s' % name] = time.time() - t0
        metrics[name] = {'remaining_violations': violations, 'remaining_violations_count': sum(violations)}
        outputs.write_structure(tdir, target_layout.relaxed(name), pdb)
        stored[name]['relaxed'] = {'metrics': metrics[name], 'unrelaxed_sha256': digests.file_digest(
            os.path.join(tdir, target_layout.unrelaxed(name) + '.pdb'))}
        records.save_model(tdir, name, stored[name])
        log.info('  relaxed %s in %.1f s', name, timings['relax_%s' % name])
    return metrics, failed


def _relaxer(use_gpu):
    from alphafold.relax import relax as amber
    return amber.AmberRelaxation(use_gpu=use_gpu, **RELAX)


def _unrelaxed(tdir, name):
    from alphafold.common import protein
    return protein.from_pdb_string(outputs.read_text(tdir, target_layout.unrelaxed(name) + '.pdb'))


def out_of_memory_error(exc):
    """A KitError for an XLA out-of-memory error, else None."""
    text = str(exc)
    if 'RESOURCE_EXHAUSTED' in text or 'Out of memory' in text or 'out of memory' in text:
        return KitError('the GPU ran out of memory: %s' % text.splitlines()[0][:300],
                        'rerun with --memory-mode unified (and --mem-fraction 4.0), or on a GPU with '
                        'more memory', EXIT_GPU)
    return None
