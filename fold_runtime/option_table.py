"""The stages' command-line options and alphafold-batch's own, each declared once: flag, aliases,
help, argparse type, default, environment variable and site-config key, path role and the stages
(or batch subcommands) that use it.

fold_runtime.options builds the argparse parsers, the typed stage options and the absolute paths
a batch stores from this table; installer/install.py renders the wrapper's bind table from it
(wrapper_options). Nothing else names these flags' defaults.
"""
import dataclasses
import os
from typing import Any, Callable, Dict, Optional, Tuple

from data_sync.registry import FULL_DBS, MMSEQS2, REDUCED_DBS
from fold_runtime import progress
from kit_common import site_config
from kit_common.errors import EXIT_FAILED

TOOLS = ('jackhmmer', 'hhblits', 'hhsearch', 'hmmsearch', 'hmmbuild', 'kalign', 'mmseqs')
DB_PRESETS = (FULL_DBS, REDUCED_DBS)
JACKHMMER = 'jackhmmer'
MSA_MODES = (JACKHMMER, MMSEQS2)   # DeepMind's searches (the default), or ColabFold's MMseqs2 search
MULTIMER = 'multimer'
MODEL_PRESETS = ('monomer', 'monomer_ptm', 'monomer_casp14', MULTIMER)
RELAX_CHOICES = ('best', 'all', 'none')
SCREEN_MODES = ('pulldown', 'all-vs-all', 'homo-oligomer')
MAX_RECYCLE = 100   # AlphaFold uses 3 (monomer) to 20 (multimer); more only burns GPU hours
LOCAL, SLURM = 'local', 'slurm'   # the executors: a process pool here, or Slurm job arrays
EXECUTORS = (LOCAL, SLURM)

# The stages that use an option (the GPU stage checks some CPU-stage ones against the meta),
# alphafold-batch screen's own, those of submit and screen (batch), and those retry shares.
CPU, GPU, SCREEN, BATCH, RETRY = 'cpu', 'gpu', 'screen', 'batch', 'retry'
# Path roles, as the Apptainer wrapper binds them: read-only inputs (a list: each file's directory),
# a read-only data directory, directories the command creates, and read-write directories. KEPT is
# no path: the wrapper keeps the value (--executor: whether alphafold-batch runs on the host).
INPUTS, DATA, MADE, READ_WRITE, CACHE, PROGRAM, KEPT = 'inputs', 'data', 'made', 'rw', 'cache', 'program', 'kept'


@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line option. stages: the first is its help group in the GPU-stage commands. field: the stage options' attribute it sets (None: read by the
    command itself); invert: a --no-X flag setting X False; meta_checked: the GPU stage takes it
    without a default and checks it against the features' meta; env and site: what applies when the
    command line leaves it out (command line > environment > site config > default); a DATA path's
    on the node that runs the stage (options.resolve_data_dir), not where it is parsed."""
    flag: str
    help: str
    stages: Tuple[str, ...]
    aliases: Tuple[str, ...] = ()
    default: Any = None
    kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    field: Optional[str] = None
    key: Optional[str] = None            # the entry of a dict-valued field (binary_paths)
    invert: bool = False
    meta_checked: bool = False
    required_by_cpu_stage: bool = False
    env: Optional[str] = None
    site: Optional[Tuple[str, str]] = None
    kind: Callable = str
    path: Optional[str] = None
    off: Tuple[str, ...] = ()            # flags that set it False (mutually exclusive with it)
    needs_gpu: bool = False              # given, its command needs the GPU in its own process (wrapper: --nv)

    @property
    def dest(self):
        return self.flag[2:].replace('-', '_')

    def names(self):
        """The flag, AlphaFold's underscore spelling (the stages' options), and any extra aliases."""
        names = [self.flag]
        underscore = ('--' + self.dest,) if {CPU, GPU} & set(self.stages) else ()
        for alias in underscore + self.aliases:
            if alias not in names:
                names.append(alias)
        return names


def default_cpus():
    """$SLURM_CPUS_PER_TASK inside a Slurm job, else the CPUs this process may run on."""
    if os.environ.get('SLURM_CPUS_PER_TASK', '').isdigit():
        return int(os.environ['SLURM_CPUS_PER_TASK'])
    return len(os.sched_getaffinity(0))


def _binary(tool):
    return Option('--%s-binary' % tool, '%s executable (default: from PATH)' % tool, (CPU,),
                  aliases=('--%s_binary_path' % tool,), kwargs=dict(metavar='PATH'), field='binary_paths', key=tool,
                  path=PROGRAM)


MEMORY = site_config.Memory
BOTH = (CPU, GPU)
OPTIONS = (
    Option('--fasta', 'FASTA files, one target each, named after the file: one protein, or with --model-preset '
           "multimer one complex (its records are the chains, or one record joins them with ':')", BOTH,
           aliases=('--fasta_paths',), kwargs=dict(nargs='+', metavar='PATH'), required_by_cpu_stage=True,
           path=INPUTS),
    Option('--output-dir', 'outputs go to OUTPUT_DIR/<target>/', BOTH, required_by_cpu_stage=True, path=MADE),
    Option('--data-dir', 'AlphaFold databases and params/ (default: $ALPHAFOLD_DATA_DIR, else the '
           "site config's node-local copy when staged, else its shared copy)", BOTH, field='data_dir',
           env='ALPHAFOLD_DATA_DIR', path=DATA),
    Option('--target-dir', 'target directories holding features.pkl (instead of --fasta/--output-dir)', (GPU,),
           kwargs=dict(nargs='+', metavar='DIR'), path=MADE),
    Option('--model-preset', "multimer: AlphaFold-Multimer's features, each FASTA file one complex: per unique "
           'chain the monomer searches with templates from pdb_seqres (hmmsearch), plus UniProt for MSA pairing '
           'when the chains differ; the data directory needs uniprot/ and pdb_seqres/. Every other preset makes '
           'the same monomer features (default: %(default)s)', (GPU, CPU), default='monomer',
           kwargs=dict(choices=MODEL_PRESETS), field='model_preset'),
    Option('--db-preset', 'full_dbs: HHblits on BFD+UniRef30; reduced_dbs: jackhmmer on small BFD (default: '
           '%(default)s)', BOTH,
           default=DB_PRESETS[0], kwargs=dict(choices=DB_PRESETS), field='db_preset', meta_checked=True),
    Option('--max-template-date', 'ignore templates released after this date (default: %(default)s)', BOTH,
           default='2100-01-01',
           kwargs=dict(metavar='YYYY-MM-DD'), field='max_template_date', meta_checked=True),
    Option('--cpus', 'CPUs to split among the searches 8:8:4 (multimer: shared by the chains searched, UniProt as '
           'UniRef90) (default: $SLURM_CPUS_PER_TASK, else the CPUs available: %(default)s)', (CPU,),
           default=default_cpus, kwargs=dict(type=int), field='cpus'),
    Option('--serial', 'run the searches one after another, in the stock order (for comparison)', (CPU,),
           default=False, kwargs=dict(action='store_true'), field='serial'),
    Option('--timeout', 'limit for each search', (CPU,), kwargs=dict(type=float, metavar='SECONDS'), field='timeout'),
    Option('--overwrite', 'recompute even when outputs from other inputs exist; the GPU stage predicts again models '
           'that the target directory already holds from the same features and options', BOTH, default=False,
           kwargs=dict(action='store_true'), field='overwrite'),
    Option('--progress-interval', 'while a search, compile, prediction or relaxation runs, log a line naming it and '
           'its elapsed time every SECONDS (default: %(default)s)', BOTH, default=progress.DEFAULT_INTERVAL,
           kwargs=dict(type=float, metavar='SECONDS'), field='progress_interval'),
    Option('--no-templates', 'skip the template search: features without templates, as AlphaFold makes them when it '
           'finds none', BOTH, default=False, kwargs=dict(action='store_true'), field='templates', invert=True,
           meta_checked=True),
    Option('--msa-mode', "jackhmmer: DeepMind's searches (default). mmseqs2: ColabFold's MMseqs2 search "
           "(colabfold_search's commands and parameters) on ColabFold's UniRef30 and environmental databases under "
           'DATA_DIR/colabfold/ makes one A3M, used as --msa is (templates by HHsearch on pdb70 from it): not '
           "DeepMind's MSA (--explain says what differs). Multimer: each chain's A3M is its unpaired MSA, "
           'UniProt (jackhmmer) pairs the chains as in AlphaFold-Multimer, templates by hmmsearch from the A3M',
           BOTH, default=JACKHMMER, kwargs=dict(choices=MSA_MODES), field='msa_mode', meta_checked=True),
    Option('--gpu', "with --msa-mode mmseqs2: ColabFold's search on MMseqs2-GPU, as colabfold_search --gpu 1 "
           '--gpu-server 1 runs it (one mmseqs gpuserver per database while it runs); needs a visible GPU, an '
           "MMseqs2 built with CUDA (release 16 or later) and the databases padded (alphafold-data --gpu-dbs). "
           "Its ungapped prefilter finds other hits than the CPU's: recorded in features.meta.json", (CPU,),
           default=False, kwargs=dict(action='store_true'), field='mmseqs_gpu', needs_gpu=True),
    Option('--msa', 'precomputed MSAs (A3M, the query first), one per --fasta target in order, used instead of '
           "the MSA searches; the template search still runs on it, as ColabFold's does (unless "
           '--no-templates). alphafold-batch: one directory holding <target>.a3m for every target', BOTH,
           kwargs=dict(nargs='+', metavar='A3M'), field='msa_paths', path=INPUTS),
    Option('--feature-cache', "shared, content-addressed cache of CPU-stage results (default: "
           "$ALPHAFOLD_FEATURE_CACHE, else the site config's [cache] feature_cache)", (CPU,),
           kwargs=dict(metavar='DIR'), field='feature_cache', env='ALPHAFOLD_FEATURE_CACHE',
           site=('cache', 'feature_cache'), path=READ_WRITE),
) + tuple(_binary(tool) for tool in TOOLS) + (
    Option('--models', 'comma-separated subset of the preset, e.g. model_1,model_3 (skip low scorers); multimer: v3 '
           'weights, earlier ones by name (model_1_multimer_v2, model_1_multimer)', (GPU,),
           kwargs=dict(metavar='LIST'), field='models'),
    Option('--num-recycle', 'recycling iterations, 0 to %d (default: the model config: 3 for monomers; multimer up '
           "to 20, stopping early as DeepMind's does)" % MAX_RECYCLE, (GPU,), kwargs=dict(type=int),
           field='num_recycle'),
    Option('--random-seed', 'prediction i gets seed i + random_seed * number of predictions, as in AlphaFold '
           '(default: %(default)s)', (GPU,), default=0, kwargs=dict(type=int), field='random_seed'),
    Option('--num-seeds', "N predictions per model with AlphaFold's seeds, all ranked together, named "
           '<model>_pred_<k> as AlphaFold names multimer predictions (monomers: only when N > 1). AlphaFold\'s '
           '--num-multimer-predictions-per-model is the same option (default: 5 for multimer, as in '
           'AlphaFold, else 1)', (GPU,),
           aliases=('--num-multimer-predictions-per-model', '--num_multimer_predictions_per_model'),
           kwargs=dict(type=int, metavar='N'), field='num_seeds'),
    Option('--models-to-relax', 'AMBER-relax only the best model (by pLDDT; multimer: by 0.8*ipTM + 0.2*pTM) '
           '(default), all, or none', (GPU,), default=RELAX_CHOICES[0], kwargs=dict(choices=RELAX_CHOICES),
           field='models_to_relax'),
    Option('--use-gpu-relax', 'relax on the GPU (default: when a GPU is visible)', (GPU,),
           kwargs=dict(action='store_true'), field='use_gpu_relax', off=('--no-gpu-relax', '--nouse_gpu_relax')),
    Option('--memory-mode', "unified: TF_FORCE_UNIFIED_MEMORY=1 and XLA_PYTHON_CLIENT_MEM_FRACTION (XLA's default "
           "allocator); auto: unified above --unified-threshold residues (default: $ALPHAFOLD_MEMORY_MODE, else the "
           "site config's [memory] mode, else %s)" % MEMORY.mode, (GPU,), default=MEMORY.mode,
           kwargs=dict(choices=site_config.MEMORY_MODES), field='memory_mode', env='ALPHAFOLD_MEMORY_MODE',
           site=('memory', 'mode')),
    Option('--mem-fraction', "XLA_PYTHON_CLIENT_MEM_FRACTION (default: $ALPHAFOLD_MEM_FRACTION, else the site "
           "config's [memory] mem_fraction, else 4.0 in unified mode)", (GPU,), kwargs=dict(type=float),
           field='mem_fraction', env='ALPHAFOLD_MEM_FRACTION', site=('memory', 'mem_fraction'), kind=float),
    Option('--unified-threshold', "length above which auto picks unified memory (default: "
           "$ALPHAFOLD_UNIFIED_THRESHOLD, else the site config's [memory] unified_threshold, else %d)"
           % MEMORY.unified_threshold, (GPU,), default=MEMORY.unified_threshold, kwargs=dict(type=int),
           field='unified_threshold', env='ALPHAFOLD_UNIFIED_THRESHOLD', site=('memory', 'unified_threshold'),
           kind=int),
    Option('--require-gpu', 'fail unless a GPU is visible', (GPU,), default=False, kwargs=dict(action='store_true'),
           field='require_gpu'),
    Option('--no-result-pkl', 'skip the large result_<model>.pkl files', (GPU,), default=False,
           kwargs=dict(action='store_true'), field='result_pkl', invert=True),
    Option('--no-plots', 'skip the per-target pictures (plddt.png, pae.png, msa_coverage.png)', (GPU,),
           default=False, kwargs=dict(action='store_true'), field='plots', invert=True),
    Option('--buckets', 'pad targets up to these lengths (e.g. 64,128,256) so one compiled model serves many '
           'proteins; outputs are cropped back (default: none here; alphafold-batch uses the '
           "site config's [batch] length_buckets, else a ColabFold-style list)", (GPU,),
           kwargs=dict(metavar='EDGES'), field='buckets'),
    Option('--compile-cache-dir', "persistent JAX compilation cache shared across jobs (default: "
           "$ALPHAFOLD_JAX_CACHE_DIR, else the site config's [cache] jax_cache)", (GPU,),
           field='compile_cache_dir', env='ALPHAFOLD_JAX_CACHE_DIR', site=('cache', 'jax_cache'), path=CACHE),
    Option('--mode', 'pulldown: each bait with each candidate; all-vs-all: every pair of --candidates; '
           'homo-oligomer: each candidate in --copies copies', (SCREEN,),
           kwargs=dict(choices=SCREEN_MODES, required=True)),
    Option('--baits', 'pulldown: the baits (chain A of each complex)', (SCREEN,),
           kwargs=dict(nargs='+', metavar='FASTA'), path=INPUTS),
    Option('--candidates', 'the candidates (pulldown: chain B)', (SCREEN,), kwargs=dict(nargs='+', metavar='FASTA'),
           path=INPUTS),
    Option('--copies', 'homo-oligomer: chains per complex (2 or more)', (SCREEN,), kwargs=dict(type=int, metavar='N')),
)
# alphafold-batch's own: how submit and screen run the batch (retry shares some).
BATCH_OPTIONS = (
    Option('--executor', 'local: a process pool and GPU workers here (default); slurm: job arrays', (BATCH,),
           default=EXECUTORS[0], kwargs=dict(choices=EXECUTORS), path=KEPT),
    Option('--cpu-partition', 'CPU-stage partition (default: the site config)', (BATCH,)),
    Option('--gpu-partition', 'GPU-stage partition (default: the site config)', (BATCH,)),
    Option('--account', 'Slurm account (default: the site config)', (BATCH,)),
    Option('--gpu-workers', 'GPU worker jobs (slurm; default: the site config)', (BATCH,), kwargs=dict(type=int)),
    Option('--cpus-per-task', 'CPUs of each CPU-stage task (default: the site config); local runs --cpus / this at '
           'once', (BATCH,), kwargs=dict(type=int)),
    Option('--wait', 'block until every target has finished; exit %d if any failed' % EXIT_FAILED, (BATCH, RETRY),
           default=False, kwargs=dict(action='store_true')),
    Option('--dry-run', 'print the job scripts; write and submit nothing', (BATCH, RETRY), default=False,
           kwargs=dict(action='store_true')),
    Option('--force', 'resubmit an existing batch with other options (they replace the stored ones)', (BATCH,),
           default=False, kwargs=dict(action='store_true')),
    Option('--no-progress', 'no progress bar (local)', (BATCH, RETRY), default=False,
           kwargs=dict(action='store_true')),
)
BY_FLAG = {o.flag: o for o in OPTIONS + BATCH_OPTIONS}


def default(flag):
    """The declared default of an option; a callable one (--cpus) is asked now."""
    value = BY_FLAG[flag].default
    return value() if callable(value) else value
