"""features.meta.json: what a features.pkl was made from, so it is reused only on a match.

ParallelFold reuses any features.pkl by path alone; a stale file then silently predicts the
wrong protein. Here every reuse compares these inputs first.
"""
import json
import os

from data_sync.registry import MMSEQS2
from fold_runtime import __version__, target_layout
from fold_runtime.options import JACKHMMER
from kit_common import digests
from kit_common.errors import EXIT_MISMATCH, KitError

META_FILE = target_layout.FEATURES_META
# Keys that decide whether features can be reused; the rest is provenance.
# semantics, alphafold_distribution, alphafold_version and tools (hmmer, HH-suite and kalign
# versions): features made under another stack are never reused (exit 6, a feature-cache miss).
# no_templates (--no-templates), msa_sha256 (--msa), model_preset (multimer), msa_pairing (a
# complex's chain searched on UniProt too), msa_mode and colabfold_databases (--msa-mode mmseqs2: the
# ColabFold databases searched; MMseqs2's version is in tools) and mmseqs_gpu (--gpu: MMseqs2-GPU's
# prefilter finds other hits than the CPU's) are recorded only when used, so metas
# and feature-cache keys written before they existed still match a run without them.
INPUT_KEYS = ('sequence_sha256', 'db_preset', 'max_template_date', 'databases', 'data_manifest_id', 'semantics',
              'alphafold_distribution', 'alphafold_version', 'tools',
              'no_templates', 'msa_sha256', 'model_preset', 'msa_pairing', 'msa_mode', 'colabfold_databases',
              'mmseqs_gpu')
# What differences() shows for an optional key a meta does not hold, where None would not say it.
ABSENT = {'msa_mode': JACKHMMER}


def sequence_sha256(sequence):
    return digests.text_digest(sequence)


def build(target, preset, max_template_date, databases, manifest_id, tools, alphafold, semantics,
          templates=True, msa_sha256=None, multimer=False, msa_pairing=False, colabfold_databases=None,
          mmseqs_gpu=False):
    """alphafold: (distribution, version) of the installed AlphaFold; semantics: what the kit ran;
    templates False: no template search; msa_sha256: the digest of a precomputed MSA (--msa);
    multimer: AlphaFold-Multimer's features (a complex, or one of its chains); msa_pairing: a chain
    searched on UniProt for pairing too; colabfold_databases: the names of the ColabFold databases
    that --msa-mode mmseqs2 searched; mmseqs_gpu: that search ran on MMseqs2-GPU (--gpu)."""
    used = (('no_templates', not templates), ('msa_sha256', msa_sha256), ('model_preset', multimer and 'multimer'),
            ('msa_pairing', msa_pairing), ('msa_mode', colabfold_databases and MMSEQS2),
            ('colabfold_databases', colabfold_databases), ('mmseqs_gpu', mmseqs_gpu))
    optional = {key: value for key, value in used if value}
    return dict({
        'target': target.name,
        'sequence_sha256': sequence_sha256(target.sequence),   # a complex: of its ':'-joined chains
        'sequence_length': target.num_residues,
        'db_preset': preset,
        'max_template_date': max_template_date,
        # With a data_sync manifest, its id stands for the databases; else each file's size+mtime.
        'data_manifest_id': manifest_id,
        'databases': None if manifest_id else databases,
        'tools': tools,
        'alphafold_distribution': alphafold[0],
        'alphafold_version': alphafold[1],
        'semantics': semantics,
        'kit_version': __version__,
    }, **optional)


def load(target_dir):
    path = os.path.join(target_dir, META_FILE)
    try:
        with open(path) as f:
            stored = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise KitError('cannot read %s: %s' % (path, exc),
                       'rerun the CPU stage with --overwrite to recreate it', EXIT_MISMATCH)
    if not isinstance(stored, dict) or not isinstance(stored.get('sequence_sha256'), str):
        raise KitError('%s is not a features meta the kit wrote (valid JSON of another shape)' % path,
                       'rerun the CPU stage with --overwrite to recreate it', EXIT_MISMATCH)
    return stored


def differences(stored, wanted):
    """Human-readable list of the inputs that differ between two metas."""
    diffs = []
    for key in INPUT_KEYS:
        if stored.get(key) != wanted.get(key):
            if key == 'databases' and stored.get(key) and wanted.get(key):
                changed = sorted(k for k in set(stored[key]) | set(wanted[key])
                                 if stored[key].get(k) != wanted[key].get(k))
                diffs.append('databases changed: %s' % ', '.join(changed[:5]))
            else:
                diffs.append('%s: existing %r, now %r' % (key, _shown(stored, key), _shown(wanted, key)))
    return diffs


def _shown(values, key):
    value = values.get(key)
    return ABSENT.get(key) if value is None else value


def check_match(target_dir, stored, wanted, what='the CPU stage'):
    diffs = differences(stored, wanted)
    if diffs:
        raise KitError('%s was made from other inputs:\n    %s'
                       % (os.path.join(target_dir, META_FILE), '\n    '.join(diffs)),
                       'rerun %s with --overwrite, or use another --output-dir' % what, EXIT_MISMATCH)
