"""The file and directory names of a target's output directory, in one place (as data_sync/layout.py
is for the databases): what the CPU stage writes and the GPU stage, batch and the tests read."""
import re

# The CPU stage's
FEATURES = 'features.pkl'
FEATURES_META = 'features.meta.json'   # what features.pkl was made from (fold_runtime/meta.py)
MSAS = 'msas'                          # the searches' outputs; a complex: one subdirectory per chain
TIMINGS = 'timings.json'               # both stages add their keys
# The GPU stage's
PREDICTION_META = 'prediction.meta.json'   # what each model was made from (gpu_stage/records.py)
SCORES = 'scores.json'
RANKING_DEBUG = 'ranking_debug.json'
RELAX_METRICS = 'relax_metrics.json'
PLOTS = ('plddt.png', 'pae.png', 'msa_coverage.png')
PLDDT_PLOT, PAE_PLOT, COVERAGE_PLOT = PLOTS
RANKED = re.compile(r'ranked_(\d+)\.(pdb|cif)$')


def _named(pattern):
    return lambda key: pattern % key


# Per model (ranked: per rank, from 0). Stems: ranked, unrelaxed and relaxed get .pdb and .cif.
ranked = _named('ranked_%d')
unrelaxed = _named('unrelaxed_%s')
relaxed = _named('relaxed_%s')
result_pkl = _named('result_%s.pkl')
confidence = _named('confidence_%s.json')
pae_json = _named('pae_%s.json')
