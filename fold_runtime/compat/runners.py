"""The model runners the kit uses on ColabFold's fork: DeepMind v2.3.2's RunModel.predict (its
recycling, its multimer stopping rule and key chain, float32 recycled state) around the fork's
network modules, then DeepMind's confidence metrics (compat.confidence). On DeepMind's AlphaFold
runner() returns DeepMind's own RunModel. jax and haiku are imported on use: the CPU stage imports
compat without them."""
from fold_runtime.compat import fidelity
from fold_runtime.compat.confidence import confidence_metrics


def runner(cfg, params):
    """A model runner with DeepMind's predict(): the installed RunModel when it is DeepMind's."""
    if not fidelity.is_fork():
        from alphafold.model import model
        return model.RunModel(cfg, params)
    fidelity.apply_model()
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
    AlphaFoldIteration (config from fidelity.MULTIMER), driven by recycle_loop with DeepMind's stopping rule
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
