"""DeepMind AlphaFold v2.3.2 semantics, whichever AlphaFold is installed.

Every install route, the development venv and the tests run DeepMind's AlphaFold, and nothing
here changes it. A site whose ALPHAFOLD_SOURCE names ColabFold's fork (`alphafold-colabfold`; the
tests' .venv-fork) gets a distribution that differs from DeepMind's v2.3.2 where results change
(docs/DESIGN.md §5). On the fork this module restores DeepMind's documented behaviour,
in one place: apply_data() before any data pipeline object is built (CPU stage), apply_model(),
model_config() and load_params() (GPU stage). compat.patches is the table of what is replaced in the
fork's modules, CHANGES the rest; `alphafold-msa --explain` prints both (report()), so a site can
audit the kit. The runners that drive the fork's network as DeepMind's RunModel does are in
compat.runners, DeepMind's confidence formulas in compat.confidence.
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
