"""DeepMind AlphaFold v2.3.2 semantics, whichever AlphaFold is installed.

The images install DeepMind's AlphaFold, and nothing here changes it. The development and venv
installs have ColabFold's fork (`alphafold-colabfold`), which differs from DeepMind's v2.3.2 where
results change (DESIGN.md §5). On the fork this module restores DeepMind's documented behaviour,
in one place: apply_data() before any data pipeline object is built (CPU stage), model_config(),
load_params() and Runner for the monomer models (GPU stage). CHANGES lists what is changed and
why; `alphafold-msa --explain` prints it, so a site can audit the kit.
"""
import logging

from fold_runtime import ALPHAFOLD_DISTRIBUTIONS, distribution  # noqa: F401 (callers use fidelity.distribution)

log = logging.getLogger(__name__)

SEMANTICS = 'deepmind-v2.3.2'
FORK = ALPHAFOLD_DISTRIBUTIONS[1]

CHANGES = (
    ('alphafold.data.pipeline.make_msa_features',
     'removes duplicate MSA rows (the first occurrence of each aligned sequence across all MSAs is kept, '
     'so the query appears once, as row 0); the fork keeps every copy and num_alignments grows'),
    ('alphafold.data.templates._assess_hhsearch_hit',
     'rejects hits aligned over <= 10% of the query, exact subsequences of the query longer than 95% of it, '
     'and templates shorter than 10 residues, besides the release-date check the fork keeps'),
    ('alphafold.data.mmcif_parsing',
     'maps modified residues to their parent amino acid (MSE -> M) with the extended 3-to-1 table '
     '(Biopython protein_letters_3to1_extended, as DeepMind\'s SCOPData table); the fork maps them to X'),
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
)
# Multimer settings (recycling, PRNG, ranking scale, numerics) go here: issue #15.
MULTIMER = {}


def is_fork():
    return distribution()[0] == FORK


def report():
    """What the kit changes in the installed AlphaFold, and why: the text of --explain."""
    dist, version = distribution()
    lines = ['AlphaFold installed: %s %s' % (dist or 'unknown', version),
             'Semantics the kit applies: %s (recorded in features.meta.json and prediction.meta.json)' % SEMANTICS]
    if not is_fork():
        lines.append('This is DeepMind\'s AlphaFold: the kit patches nothing in it.')
        return '\n'.join(lines)
    lines.append('This is ColabFold\'s fork. To give DeepMind v2.3.2\'s features and monomer predictions, the '
                 'kit changes, before any pipeline or model is built:')
    lines += ['  - %s: %s' % change for change in CHANGES]
    return '\n'.join(lines)


# ---- the CPU stage ---------------------------------------------------------------------------

_applied = []


def apply_data():
    """Install DeepMind's data semantics into the fork's modules (once per process)."""
    if _applied or not is_fork():
        return
    from alphafold.data import mmcif_parsing, pipeline, templates
    pipeline.make_msa_features = make_msa_features
    templates._assess_hhsearch_hit = assess_hhsearch_hit
    mmcif_parsing.PDBData = _extended_letters()
    _applied.append(True)
    log.info('AlphaFold %s %s: DeepMind v2.3.2 data semantics applied (alphafold-msa --explain lists them)',
             *distribution())


def _extended_letters():
    """What mmcif_parsing reads as PDBData: the 3-to-1 table with modified residues mapped to their
    parent, as SCOPData's was when DeepMind pinned Biopython 1.79 (1.80 moved it to PDBData)."""
    try:
        from Bio.Data import PDBData
        table = PDBData.protein_letters_3to1_extended
    except ImportError:
        from Bio.Data import SCOPData
        table = SCOPData.protein_letters_3to1
    return type('ExtendedLetters', (), {'protein_letters_3to1': table})


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

def model_config(cfg):
    """DeepMind's monomer numerics in a model config: float32, unfused triangle multiplications."""
    if not is_fork():
        return cfg
    cfg.model.global_config.bfloat16 = False
    flat = cfg.to_dict()
    for key in _keys_named(flat, 'fuse_projection_weights'):
        cfg.update_from_flattened_dict({key: False})
    return cfg


def _keys_named(tree, name, prefix=''):
    for key, value in tree.items():
        path = prefix + key
        if key == name:
            yield path
        elif isinstance(value, dict):
            yield from _keys_named(value, name, path + '.')


def load_params(model_name, data_dir):
    from alphafold.model import data
    if is_fork():
        return data.get_model_haiku_params(model_name=model_name, data_dir=data_dir, fuse=False)
    return data.get_model_haiku_params(model_name=model_name, data_dir=data_dir)


def runner(cfg, params):
    """A model runner with DeepMind's predict(): the installed RunModel when it is DeepMind's."""
    if is_fork() and not cfg.model.global_config.multimer_mode:
        return Runner(cfg, params)
    from alphafold.model import model
    return model.RunModel(cfg, params)


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
    import numpy as np
    step = breaks[1] - breaks[0]
    return np.append(breaks + step / 2, breaks[-1] + step)


def plddt(logits):
    """Per-residue pLDDT (0-100) from the pLDDT head's logits."""
    import numpy as np
    num_bins = np.shape(logits)[-1]
    width = 1.0 / num_bins
    return np.sum(_softmax(logits) * np.arange(0.5 * width, 1.0, width), axis=-1) * 100


def predicted_tm_score(probs, breaks):
    """pTM from the PAE head's probabilities, every residue weighted equally (one chain)."""
    import numpy as np
    num_res = max(probs.shape[0], 19)
    d0 = 1.24 * (num_res - 15) ** (1. / 3) - 1.8
    per_pair = np.sum(probs * (1. / (1 + np.square(bin_centers(breaks)) / np.square(d0))), axis=-1)
    per_alignment = np.sum(per_pair / (1e-8 + probs.shape[0]), axis=-1)
    return per_alignment.max()


def confidence_metrics(result):
    """DeepMind's monomer get_confidence_metrics: pLDDT, PAE and pTM when the model has the PAE
    head, and the ranking confidence, mean pLDDT."""
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
    metrics['ranking_confidence'] = np.mean(metrics['plddt'])
    return metrics
