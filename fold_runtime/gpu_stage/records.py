"""prediction.meta.json: one record per model in a target directory, saying what the model was made
from (the features' digest, seed, recycles, ensembles, padded length, weights file, AlphaFold and
semantics) and how it scored.

The record is written as soon as the model's files are, so a requeued job keeps what finished: a
model whose files exist and whose record matches what this run would do is not predicted again.
Ranking and relaxation run over every model recorded for the same features, so model subsets run
in separate jobs (--models model_1, then --models model_2) end as one job with both.
"""
import json
import os

from fold_runtime import __version__, compat, target_layout
from fold_runtime.gpu_stage import weights
from kit_common import digests, files

# What decides whether a stored model equals the one this run would predict.
MADE_WITH = ('features_sha256', 'seed', 'num_recycle', 'num_ensemble', 'padded_length', 'weights',
             'semantics', 'alphafold_distribution', 'alphafold_version', 'tools')


def features_digest(tdir):
    return digests.file_digest(os.path.join(tdir, target_layout.FEATURES))


def made_with(runner, seed, num_res, params_path, features_sha256, tools):
    """What this run would make a model from. The weights file stands for itself by name, size and
    mtime: hashing gigabytes of weights per job would cost more than it protects. tools: the search
    tools' versions the features were made with (features.meta.json)."""
    stat = os.stat(params_path)
    distribution, version = compat.fidelity.distribution()
    return {'features_sha256': features_sha256, 'seed': seed, 'num_recycle': runner.config.model.num_recycle,
            'num_ensemble': weights.num_ensemble(runner.config), 'padded_length': num_res,
            'weights': {'file': os.path.basename(params_path), 'size': stat.st_size, 'mtime_ns': stat.st_mtime_ns},
            'semantics': compat.SEMANTICS, 'alphafold_distribution': distribution, 'alphafold_version': version,
            'tools': tools}


def load(tdir):
    """{model name: record}; {} when there is no readable prediction.meta.json (nothing is kept)."""
    try:
        with open(os.path.join(tdir, target_layout.PREDICTION_META)) as f:
            models = json.load(f).get('models')
    except (OSError, ValueError, AttributeError):
        return {}
    return models if isinstance(models, dict) else {}


def save(tdir, models):
    """The whole file, atomically: which AlphaFold ran, under which semantics, and every model."""
    distribution, version = compat.fidelity.distribution()
    files.write_json(os.path.join(tdir, target_layout.PREDICTION_META), {
        'alphafold_distribution': distribution, 'alphafold_version': version, 'semantics': compat.SEMANTICS,
        'kit_version': __version__, 'models': models})


def save_model(tdir, name, record):
    models = load(tdir)
    models[name] = record
    save(tdir, models)


def model_files(name, record, result_pkl):
    """The files a finished model has."""
    stem = target_layout.unrelaxed(name)
    names = [stem + '.pdb', stem + '.cif', target_layout.confidence(name)]
    if record.get('scores', {}).get('ptm') is not None:
        names.append(target_layout.pae_json(name))
    if result_pkl:
        names.append(target_layout.result_pkl(name))
    return names


def finished(tdir, name, wanted, result_pkl):
    """Whether the stored model equals what this run would predict, with all its files present."""
    record = load(tdir).get(name)
    if not record or any(record.get(k) != wanted[k] for k in MADE_WITH):
        return False
    return all(os.path.exists(os.path.join(tdir, f)) for f in model_files(name, record, result_pkl))


def same_features(tdir, features_sha256, several_seeds=False):
    """{name: record} of every model in the directory made from these features (by name, so the
    ranking's tie order does not depend on which job ran which model). several_seeds: predictions
    named <model>_pred_<k> (--num-seeds above 1), else those named after their model: a run with
    one seed and a run with several rank apart, as two single jobs would."""
    return {name: r for name, r in sorted(load(tdir).items())
            if r.get('features_sha256') == features_sha256 and 'scores' in r
            and ('_pred_' in name) == several_seeds
            and os.path.exists(os.path.join(tdir, target_layout.unrelaxed(name) + '.pdb'))}


def relaxed_is_current(tdir, name, record):
    """relaxed_<name>.pdb exists and was relaxed from the unrelaxed model now on disk."""
    relaxed = record.get('relaxed') or {}
    path = os.path.join(tdir, target_layout.unrelaxed(name) + '.pdb')
    return (bool(relaxed) and all(os.path.exists(os.path.join(tdir, '%s.%s' % (target_layout.relaxed(name), ext)))
                                  for ext in ('pdb', 'cif'))
            and os.path.exists(path) and relaxed.get('unrelaxed_sha256') == digests.file_digest(path))
