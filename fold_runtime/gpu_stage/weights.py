"""AlphaFold model configs and weights: params/params_<model>.npz under the data directory.

Random *test* weights (tests/make_test_weights.py) carry params/test_weights.json, whose config
overrides (fewer Evoformer blocks, smaller MSA crops) make them runnable on a CPU; the runtime
applies them and says plainly that predictions from such weights are meaningless.
"""
import json
import os
import zipfile
import zlib

from kit_common.errors import EXIT_MISSING, KitError

TEST_WEIGHTS_FILE = 'test_weights.json'
PRESET_MODELS = {
    'monomer': tuple('model_%d' % i for i in range(1, 6)),
    'monomer_casp14': tuple('model_%d' % i for i in range(1, 6)),
    'monomer_ptm': tuple('model_%d_ptm' % i for i in range(1, 6)),
    'multimer': tuple('model_%d_multimer_v3' % i for i in range(1, 6)),
}
# Earlier multimer weights, chosen by name (--models model_1_multimer_v2): v3 is the preset's.
OTHER_MULTIMER = tuple('model_%d_multimer%s' % (i, v) for v in ('', '_v2') for i in range(1, 6))


def params_path(data_dir, model_name):
    return os.path.join(data_dir, 'params', 'params_%s.npz' % model_name)


def test_weights_note(data_dir):
    """The test-weights marker's content, or None for real weights."""
    path = os.path.join(data_dir, 'params', TEST_WEIGHTS_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def select_models(preset, subset=None):
    """The preset's models, or the --models subset of them (ParallelFold's -m), in preset order."""
    models = PRESET_MODELS[preset]
    if not subset:
        return list(models)
    allowed = models + (OTHER_MULTIMER if preset == 'multimer' else ())
    wanted = [m.strip() for m in subset.split(',') if m.strip()]
    # Accept the short form: --models model_1,model_3 under monomer_ptm.
    suffix = {'monomer_ptm': '_ptm', 'multimer': '_multimer_v3'}.get(preset, '')
    full = [m if m in allowed else m + suffix for m in wanted]
    unknown = [w for w, f in zip(wanted, full) if f not in allowed]
    if unknown:
        raise KitError('unknown model(s) for --model-preset %s: %s' % (preset, ', '.join(unknown)),
                       _preset_hint(unknown) or 'choose from %s' % ', '.join(allowed))
    return [m for m in allowed if m in full]


def preset_index(model_name):
    """The model's place among its preset's five (model_<i>...: i - 1), which run_alphafold.py's seeds count."""
    return int(model_name.split('_')[1]) - 1


def _preset_hint(names):
    """The preset whose models these names are, when it is another one (model_1_ptm under monomer)."""
    for preset, models in sorted(PRESET_MODELS.items()):
        if all(n in models for n in names):
            return 'these are %s models: pass --model-preset %s (or choose from the preset\'s own models)' % (
                preset, preset)
    return None


def model_config(model_name, preset, num_recycle=None, overrides=None):
    """AlphaFold's config for a model, set as run_alphafold.py sets it for the preset, with
    DeepMind's numerics (compat.fidelity)."""
    from alphafold.model import config
    from fold_runtime.compat import fidelity
    cfg = fidelity.model_config(config.model_config(model_name), model_name)
    if num_recycle is not None:
        cfg.model.num_recycle = num_recycle
    if 'data' in cfg:   # monomers (multimer configs have no input pipeline, and one ensemble)
        # run_alphafold.py: eight ensembles for monomer_casp14, one otherwise.
        cfg.data.eval.num_ensemble = 8 if preset == 'monomer_casp14' else 1
        cfg.data.common.num_recycle = cfg.model.num_recycle
    if overrides:
        cfg.update_from_flattened_dict(dict(overrides))
    return cfg


def num_ensemble(cfg):
    """The ensembles a model runs: data.eval for monomers, model.num_ensemble_eval for multimers."""
    return cfg.data.eval.num_ensemble if 'data' in cfg else cfg.model.num_ensemble_eval


INSTALL = ('ask your site\'s AlphaFold admin to install the weights there (admins: alphafold-data download '
           '--databases params), or point --data-dir at a data directory whose params/ has them')


def require(data_dir, model_names):
    """Every weights file of these models exists; else a KitError naming the missing ones."""
    missing = [params_path(data_dir, m) for m in model_names if not os.path.exists(params_path(data_dir, m))]
    if missing:
        raise KitError('weights file%s missing in %s: %s' % ('s' if len(missing) > 1 else '',
                                                             os.path.join(data_dir, 'params'), ', '.join(missing)),
                       INSTALL, EXIT_MISSING)


def damaged(path, exc):
    """The KitError (exit 3) for a weights file that exists but is not a model's weights."""
    text = str(exc).splitlines()[0][:300] if str(exc) else ''
    return KitError('weights file %s is damaged or not this model\'s (%s: %s)' % (path, type(exc).__name__, text),
                    'replace it (a partial copy?): ' + INSTALL, EXIT_MISSING)


def shape_error(exc, path):
    """damaged() for haiku's error when a weight's shape is not the model's (it comes at the first
    prediction, where the weights meet the network), else None."""
    return damaged(path, exc) if isinstance(exc, ValueError) and 'does not match shape' in str(exc) else None


def load_params(data_dir, model_name):
    """Weights through AlphaFold's own loader (no pickles: allow_pickle=False); a missing, truncated
    or otherwise unreadable file names itself and its reinstall."""
    from fold_runtime.compat import fidelity
    require(data_dir, [model_name])
    try:
        return fidelity.load_params(model_name, data_dir)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise damaged(params_path(data_dir, model_name), exc)


def load_runner(data_dir, model_name, preset, num_recycle=None):
    from fold_runtime.compat import runners
    note = test_weights_note(data_dir)
    cfg = model_config(model_name, preset, num_recycle, note and note.get('config_overrides'))
    return runners.runner(cfg, load_params(data_dir, model_name))
