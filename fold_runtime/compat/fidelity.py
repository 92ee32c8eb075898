"""DeepMind AlphaFold v2.3.2 semantics, whichever AlphaFold is installed.

Every install route, the development venv and the tests run DeepMind's AlphaFold, and nothing
here changes it. A site whose ALPHAFOLD_SOURCE names ColabFold's fork (`alphafold-colabfold`; the
tests' .venv-fork) gets a distribution that differs from DeepMind's v2.3.2 where results change
(docs/DESIGN.md §5). On the fork this module restores DeepMind's documented behaviour,
in one place: apply_data() before any data pipeline object is built (CPU stage), model_config(),
load_params() and Runner for the monomer models (GPU stage). compat.patches is the table of what is
replaced in the fork's modules, CHANGES the rest; `alphafold-msa --explain` prints both, so a site
can audit the kit.
"""
from fold_runtime import distribution
from fold_runtime.compat import patches
from fold_runtime.compat.ccd_letters import CCD_NAME_TO_ONE_LETTER

SEMANTICS = 'deepmind-v2.3.2'

# What the kit changes besides the patch table (compat.patches), all printed by --explain.
CHANGES = (
    ('template realignment', 'kalign 2.04, as DeepMind\'s images (the fork\'s users run kalign 3)'),
    ('global_config.bfloat16', 'False: the monomer models run in float32 (the fork defaults to bfloat16)'),
    ('fuse_projection_weights and get_model_haiku_params(fuse=)',
     'False: triangle-multiplication weights stay unfused, as DeepMind ships and runs them'),
    ('model._cast_result', 'not applied: outputs and the recycled state stay float32 (the fork casts them '
     'to float16, rounding prev_pos, prev_pair and prev_msa_first_row on every recycle)'),
    ('RunModel.predict and get_confidence_metrics',
     'recycling runs num_recycle + 1 iterations on float32 state, and pLDDT, PAE, pTM and the ranking '
     'confidence (mean pLDDT) are computed after the model with DeepMind\'s formulas, returning one '
     'result dict; the fork returns (result, recycles) with confidences from its own in-jit code'),
    ('multimer model config',
     'every multimer version (v1 and v2 too; the fork gives them 3 recycles and no early stop) recycles up to '
     '20 times with early-stop tolerance 0.5; bfloat16 Evoformer as DeepMind runs it, with the fork\'s '
     'extra kernels (Pallas, fp8, length buckets, split MSA sampling) off; v1/v2 weights unfused, v3 fused'),
    ('multimer RunModel.predict',
     'DeepMind\'s recycling rule: the loop runs while fewer than num_recycle recycles ran and the C-alpha '
     'distance change exceeds the tolerance, then one more pass (the fork stops at once when the change is '
     'below it); DeepMind\'s key chain (its SafeKey splits, recomputed on the host); ipTM, pTM and the '
     'ranking confidence 0.8*ipTM + 0.2*pTM on 0-1 (the fork: 80*ipTM + 20*pTM on 0-100)'),
    ('not restored (measured by benchmarks/multimer_prng.py)',
     'the recycling loop runs on the host, not in one XLA while loop (rounding only); the fork\'s attention adds '
     'its mask as a bias and clips logits at +-1e8 (DeepMind sets masked logits to -1e9: no effect on the softmax)'),
)
# DeepMind v2.3.2's multimer settings, for every multimer version (model_config).
MULTIMER = {
    'model.num_recycle': 20,
    'model.recycle_early_stop_tolerance': 0.5,
    'model.resample_msa_in_recycling': True,
    'model.global_config.bfloat16': True,
    'model.global_config.half_dtype': 'bfloat16',
    'model.global_config.bfloat16_output': False,
    'model.global_config.use_pallas': False,
    'model.global_config.fp8': False,
    'model.global_config.length_buckets': False,
    'model.split_msa_sampling': False,
}


def is_fork():
    return distribution()[0] == patches.FORK


def report():
    """What the kit changes in the installed AlphaFold, and why: the text of --explain."""
    dist, version = distribution()
    lines = ['AlphaFold installed: %s %s' % (dist or 'unknown', version),
             'Semantics the kit applies: %s (recorded in features.meta.json and prediction.meta.json)' % SEMANTICS]
    if not is_fork():
        lines.append('This is DeepMind\'s AlphaFold: the kit patches nothing in it.')
        return '\n'.join(lines)
    lines.append('This is ColabFold\'s fork (versions tested: %s). To give DeepMind v2.3.2\'s features and '
                 'predictions, the kit replaces, before any pipeline or model is built:'
                 % ', '.join(patches.TESTED_FORK_VERSIONS))
    lines += ['  - %s.%s (%s stage) -> %s: %s' % (p.module, p.attribute, p.stage, p.replacement.replace(':', '.'),
                                                  p.reason) for p in patches.PATCHES]
    lines.append('sets in every multimer model\'s config:')
    lines += ['  - %s = %r' % item for item in sorted(MULTIMER.items())]
    lines.append('and changes:')
    lines += ['  - %s: %s' % change for change in CHANGES]
    return '\n'.join(lines)


# ---- the CPU stage ---------------------------------------------------------------------------

def apply_data():
    """DeepMind's data semantics in the fork's modules, before any data pipeline object is built."""
    patches.apply('data')


class DeepMindLetters(object):
    """What the fork's mmcif_parsing reads as PDBData: DeepMind's 3-to-1 table."""
    protein_letters_3to1 = CCD_NAME_TO_ONE_LETTER


def make_msa_features(msas):
    """MSA features with each aligned sequence kept once, at its first occurrence across the MSAs."""
    import numpy as np
    from alphafold.common import residue_constants
    from alphafold.data import msa_identifiers
    if not msas:
        raise ValueError('At least one MSA must be provided.')
    rows, deletions, species, seen = [], [], [], set()
    for index, msa in enumerate(msas):
        if not msa:
            raise ValueError('MSA %d must contain at least one sequence.' % index)
        for sequence, deletion_row, description in zip(msa.sequences, msa.deletion_matrix, msa.descriptions):
            if sequence in seen:
                continue
            seen.add(sequence)
            rows.append([residue_constants.HHBLITS_AA_TO_ID[res] for res in sequence])
            deletions.append(deletion_row)
            species.append(msa_identifiers.get_identifiers(description).species_id.encode('utf-8'))
    num_res = len(msas[0].sequences[0])
    return {'deletion_matrix_int': np.array(deletions, dtype=np.int32),
            'msa': np.array(rows, dtype=np.int32),
            'num_alignments': np.array([len(rows)] * num_res, dtype=np.int32),
            'msa_species_identifiers': np.array(species, dtype=np.object_)}


def assess_hhsearch_hit(hit, hit_pdb_code, query_sequence, release_dates, release_date_cutoff,
                        max_subsequence_ratio=0.95, min_align_ratio=0.1):
    """The template prefilter: date, alignment coverage, near-duplicates of the query, length. The
    fork's caller passes max_subsequence_ratio=1.0; DeepMind's uses the default, 0.95."""
    from alphafold.data import templates
    del max_subsequence_ratio
    template_sequence = hit.hit_sequence.replace('-', '')
    align_ratio = hit.aligned_cols / len(query_sequence)
    length_ratio = float(len(template_sequence)) / len(query_sequence)
    if templates._is_after_cutoff(hit_pdb_code, release_dates, release_date_cutoff):
        raise templates.DateError('Date (%s) > max template date (%s).'
                                  % (release_dates[hit_pdb_code], release_date_cutoff))
    if align_ratio <= min_align_ratio:
        raise templates.AlignRatioError('Proportion of residues aligned to query too small. '
                                        'Align ratio: %s.' % align_ratio)
    if template_sequence in query_sequence and length_ratio > 0.95:
        raise templates.DuplicateError('Template is an exact subsequence of query with large coverage. '
                                       'Length ratio: %s.' % length_ratio)
    if len(template_sequence) < 10:
        raise templates.LengthError('Template too short. Length: %d.' % len(template_sequence))
    return True


# ---- the GPU stage -----------------------------------------------------------------------------

def apply_model():
    """DeepMind's numerics in the fork's model and relax modules, before any random key, model or
    relaxation."""
    patches.apply('model')


def model_config(cfg, model_name=''):
    """DeepMind's numerics in a model config: monomers float32; multimers MULTIMER; triangle
    multiplications unfused except in multimer v3 (DeepMind ships v3 fused, the others unfused)."""
    if not is_fork():
        return cfg
    multimer = cfg.model.global_config.multimer_mode
    patches.override(cfg, MULTIMER if multimer else {'model.global_config.bfloat16': False})
    for key in _keys_named(cfg.to_dict(), 'fuse_projection_weights'):
        cfg.update_from_flattened_dict({key: _fused(model_name)})
    return cfg


def _fused(model_name):
    """Whether DeepMind ships and runs the model's triangle-multiplication weights fused."""
    return model_name.endswith('_multimer_v3')


def _keys_named(tree, name, prefix=''):
    for key, value in tree.items():
        path = prefix + key
        if key == name:
            yield path
        elif isinstance(value, dict):
            yield from _keys_named(value, name, path + '.')


def load_params(model_name, data_dir):
    """The weights as stored: the fork's loader converts them to fused or unfused names (fuse=),
    which is asked to keep DeepMind's layout."""
    from alphafold.model import data
    if is_fork():
        return data.get_model_haiku_params(model_name=model_name, data_dir=data_dir, fuse=_fused(model_name))
    return data.get_model_haiku_params(model_name=model_name, data_dir=data_dir)


def runner(cfg, params):
    """A model runner with DeepMind's predict(): the installed RunModel when it is DeepMind's."""
    if not is_fork():
        from alphafold.model import model
        return model.RunModel(cfg, params)
    apply_model()
    return (MultimerRunner if cfg.model.global_config.multimer_mode else Runner)(cfg, params)


class Runner(object):
    """DeepMind v2.3.2's RunModel for the fork's monomer network: one jitted recycling iteration
    (the fork's modules, float32, no output casts) run num_recycle + 1 times on float32 state, as
    DeepMind's in-graph loop does, then DeepMind's confidence metrics."""

    multimer_mode = False

    def __init__(self, config, params):
        import haiku as hk
        import jax
        self.config, self.params = config, params
        self.apply = jax.jit(hk.transform(self._iteration).apply)

    def _iteration(self, batch, prev):
        return _iteration_module()(self.config.model, self.config.data.eval.num_ensemble)(batch, prev)

    def process_features(self, raw_features, random_seed):
        from alphafold.model import features
        return features.np_example_to_features(np_example=raw_features, config=self.config,
                                               random_seed=random_seed)

    def predict(self, feat, random_seed=0):
        import jax
        import jax.numpy as jnp
        evo = self.config.model.embeddings_and_evoformer
        num_ensemble = self.config.data.eval.num_ensemble
        length = feat['aatype'].shape[1]
        prev = {'prev_pos': jnp.zeros([length, 37, 3], jnp.float32),
                'prev_msa_first_row': jnp.zeros([length, evo.msa_channel], jnp.float32),
                'prev_pair': jnp.zeros([length, length, evo.pair_channel], jnp.float32)}
        key = jax.random.PRNGKey(random_seed)
        for recycle in range(self.config.model.num_recycle + 1):
            batch = {k: v[recycle * num_ensemble:(recycle + 1) * num_ensemble] for k, v in feat.items()}
            result, prev = self.apply(self.params, key, batch, prev)
        result = jax.device_get(result)
        result.update(confidence_metrics(result))
        return result


class MultimerRunner(object):
    """DeepMind v2.3.2's multimer RunModel for the fork's network: one jitted pass of the fork's
    AlphaFoldIteration (config from MULTIMER), driven by recycle_loop with DeepMind's stopping rule
    and key chain, then DeepMind's confidence metrics (ipTM, pTM, 0.8*ipTM + 0.2*pTM)."""

    multimer_mode = True

    def __init__(self, config, params):
        import haiku as hk
        import jax
        self.config, self.params = config, params
        self.apply = jax.jit(hk.transform(self._pass).apply)
        # DeepMind's module takes its first key from haiku (hk.next_rng_key() on apply's key).
        self.first_key = jax.jit(hk.transform(hk.next_rng_key).apply)

    def _pass(self, batch, prev, key):
        return _multimer_pass_module()(self.config.model)(batch, prev, key)

    def process_features(self, raw_features, random_seed):
        return raw_features

    def predict(self, feat, random_seed=0):
        import jax
        import jax.numpy as jnp
        import numpy as np
        model = self.config.model
        length = feat['aatype'].shape[0]
        evo = model.embeddings_and_evoformer
        prev = {'prev_pos': jnp.zeros([length, 37, 3], jnp.float32),
                'prev_msa_first_row': jnp.zeros([length, evo.msa_channel], jnp.float32),
                'prev_pair': jnp.zeros([length, length, evo.pair_channel], jnp.float32)}
        feat = jax.device_put(feat)

        def step(key, state):   # haiku's own key only feeds a shape evaluation: the pass draws from key
            return self.apply(self.params, key, feat, state, key)
        result, recycles = recycle_loop(step, self.first_key({}, jax.random.PRNGKey(random_seed)), prev,
                                        model.num_recycle, model.recycle_early_stop_tolerance,
                                        model.resample_msa_in_recycling)
        result = jax.device_get(result)
        result.update(confidence_metrics(result, asym_id=np.asarray(feat['asym_id'])))
        result['num_recycles'] = np.asarray(recycles)
        return result


def recycle_loop(step, key, prev, num_recycle, tolerance, resample_msa):
    """DeepMind's multimer recycling (modules_multimer.AlphaFold, v2.3.2), on the host.
    step(key, prev) -> (result, next prev, C-alpha distance change). The loop runs while
    i < num_recycle and (i == 0 or change > tolerance); then one more pass on the last key, whose
    result is returned with i, the recycles run. Each loop pass splits the key (key, pass key),
    or reuses it without MSA resampling, as DeepMind's SafeKey chain does."""
    import jax
    i, change = 0, None
    while i < num_recycle and (i == 0 or change > tolerance):
        key, pass_key = jax.random.split(key) if resample_msa else (key, key)
        _, prev, change = step(pass_key, prev)
        i += 1
    result, _, _ = step(key, prev)
    return result, i


def _multimer_pass_module():
    """One multimer recycling pass, named 'alphafold' as the weights' scopes are: the fork's
    AlphaFoldIteration with the key given, the next recycled state, and DeepMind's early-stop
    measure (root mean square change of the C-alpha distance matrix over real residues)."""
    import haiku as hk

    class MultimerPass(hk.Module):

        def __init__(self, config):
            super().__init__(name='alphafold')
            self.config = config

        def __call__(self, batch, prev, key):
            import jax
            import jax.numpy as jnp
            from alphafold.common import residue_constants
            from alphafold.model import modules_multimer, prng, utils
            ret = modules_multimer.AlphaFoldIteration(self.config, self.config.global_config)(
                batch=dict(batch, **prev), is_training=False, safe_key=prng.SafeKey(key))
            new = {'prev_pos': ret['structure_module']['final_atom_positions'],
                   'prev_msa_first_row': ret['representations']['msa_first_row'],
                   'prev_pair': ret['representations']['pair']}
            del ret['representations']
            ca = residue_constants.atom_order['CA']

            def distances(points):
                return jnp.sqrt(jnp.sum((points[:, None] - points[None, :]) ** 2, axis=-1))
            mask = batch['seq_mask'][:, None] * batch['seq_mask'][None, :]
            sq_diff = utils.mask_mean(mask, jnp.square(distances(prev['prev_pos'][:, ca]) -
                                                       distances(new['prev_pos'][:, ca])))
            return ret, jax.tree_util.tree_map(jax.lax.stop_gradient, new), jnp.sqrt(sq_diff + 1e-8)
    return MultimerPass


def _iteration_module():
    """The haiku module class, defined on first use: the CPU stage imports this file without jax."""
    import haiku as hk

    class Iteration(hk.Module):
        """Named 'alphafold', as the weights' scopes are: one recycling iteration."""

        def __init__(self, config, num_ensemble):
            super().__init__(name='alphafold')
            self.config, self.num_ensemble = config, num_ensemble

        def __call__(self, batch, prev):
            import jax
            from alphafold.model import modules
            gc = self.config.global_config
            if self.num_ensemble == 1:
                single = jax.tree_util.tree_map(lambda x: x[0], batch)
                ret = modules.AlphaFoldIteration_noE(self.config, gc)(batch=dict(single, **prev), is_training=False)
            else:
                ret = modules.AlphaFoldIteration(self.config, gc)(
                    ensembled_batch=batch, non_ensembled_batch=prev, is_training=False, compute_loss=False,
                    ensemble_representations=True)
            prev = {'prev_pos': ret['structure_module']['final_atom_positions'],
                    'prev_msa_first_row': ret['representations']['msa_first_row'],
                    'prev_pair': ret['representations']['pair']}
            del ret['representations']
            return ret, prev
    return Iteration


def _softmax(logits):
    import numpy as np
    logits = np.asarray(logits, np.float32)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def bin_centers(breaks):
    """DeepMind's _calculate_bin_centers: each bin's middle, and one step past the last (31.75 A)."""
    import numpy as np
    step = breaks[1] - breaks[0]
    centers = breaks + step / 2
    return np.append(centers, centers[-1] + step)


def plddt(logits):
    """Per-residue pLDDT (0-100) from the pLDDT head's logits."""
    import numpy as np
    num_bins = np.shape(logits)[-1]
    width = 1.0 / num_bins
    return np.sum(_softmax(logits) * np.arange(0.5 * width, 1.0, width), axis=-1) * 100


def predicted_tm_score(probs, breaks, asym_id=None):
    """pTM from the PAE head's probabilities, every residue weighted equally; with asym_id, ipTM:
    only pairs of residues in different chains count (DeepMind's interface=True)."""
    import numpy as np
    num_res = max(probs.shape[0], 19)
    d0 = 1.24 * (num_res - 15) ** (1. / 3) - 1.8
    per_pair = np.sum(probs * (1. / (1 + np.square(bin_centers(breaks)) / np.square(d0))), axis=-1)
    pairs = np.ones(per_pair.shape) if asym_id is None else (asym_id[:, None] != asym_id[None, :]).astype(float)
    per_alignment = np.sum(per_pair * pairs / (1e-8 + np.sum(pairs, axis=-1, keepdims=True)), axis=-1)
    return per_alignment.max()


def confidence_metrics(result, asym_id=None):
    """DeepMind's get_confidence_metrics: pLDDT, PAE and pTM when the model has the PAE head; the
    ranking confidence is mean pLDDT for monomers, and for multimers (asym_id given)
    0.8 * ipTM + 0.2 * pTM, on 0-1."""
    import numpy as np
    metrics = {'plddt': plddt(result['predicted_lddt']['logits'])}
    head = result.get('predicted_aligned_error')
    if isinstance(head, dict) and 'logits' in head:
        breaks = np.asarray(head['breaks'])
        probs = _softmax(head['logits'])
        centers = bin_centers(breaks)
        metrics.update(aligned_confidence_probs=probs, predicted_aligned_error=np.sum(probs * centers, axis=-1),
                       max_predicted_aligned_error=np.asarray(centers[-1]),
                       ptm=np.asarray(predicted_tm_score(probs, breaks)))
    if asym_id is None:
        metrics['ranking_confidence'] = np.mean(metrics['plddt'])
    else:
        metrics['iptm'] = np.asarray(predicted_tm_score(probs, breaks, asym_id))
        metrics['ranking_confidence'] = 0.8 * metrics['iptm'] + 0.2 * metrics['ptm']
    return metrics
