"""The stages' options as typed objects, and the command-line options that build them.

alphafold-msa, -predict and -run build CpuStageOptions and GpuStageOptions from their command
lines; alphafold-batch stores the same objects as JSON in batch.json and its jobs read them back,
so renaming a command-line option never breaks resuming a batch. Every value, including the
kit's environment variables, is checked here, before any search or model runs.
"""
import argparse
import datetime
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import fold_runtime
from data_sync.registry import MMSEQS2
from kit_common import site_config, typed
from kit_common.errors import EXIT_HELP, EXIT_INPUT, KitError

log = logging.getLogger(__name__)

TOOLS = ('jackhmmer', 'hhblits', 'hhsearch', 'hmmsearch', 'hmmbuild', 'kalign', 'mmseqs')
DB_PRESETS = ('full_dbs', 'reduced_dbs')
JACKHMMER = 'jackhmmer'
MSA_MODES = (JACKHMMER, MMSEQS2)   # DeepMind's searches (the default), or ColabFold's MMseqs2 search
MULTIMER = 'multimer'
MODEL_PRESETS = ('monomer', 'monomer_ptm', 'monomer_casp14', MULTIMER)
RELAX_CHOICES = ('best', 'all', 'none')
MAX_RECYCLE = 100   # AlphaFold uses 3 (monomer) to 20 (multimer); more only burns GPU hours
MAX_SEEDS = 1000    # predictions per model: massive sampling (AFsample) runs about 1,000; 10^6 is a typo
SEED_BITS = 63      # prediction seeds are int64 in AlphaFold's input pipeline (run_alphafold.py stays below 2^63)
MIN_PROGRESS_INTERVAL = 0.1   # seconds; more often only floods the log
FIX = 'see --help for the accepted values'


@dataclass
class CpuStageOptions:
    """What the CPU stage is asked to do; data_dir as given (the node-local choice is made at
    run time, on the node that runs the stage)."""
    data_dir: Optional[str] = None
    db_preset: str = 'full_dbs'
    max_template_date: str = '2100-01-01'
    cpus: int = 1
    serial: bool = False
    timeout: Optional[float] = None
    overwrite: bool = False
    feature_cache: Optional[str] = None
    binary_paths: Dict[str, Optional[str]] = field(default_factory=dict)
    progress_interval: float = 60.0
    templates: bool = True                 # False: --no-templates, no template search
    msa_paths: Tuple[str, ...] = ()        # --msa: one precomputed A3M per target, in --fasta order
    model_preset: str = 'monomer'          # multimer: each FASTA file is one complex
    msa_mode: str = JACKHMMER              # MMSEQS2: ColabFold's search makes the MSA

    @property
    def multimer(self):
        return self.model_preset == MULTIMER

    def check(self):
        if self.progress_interval < MIN_PROGRESS_INTERVAL:
            return progress_problem(self.progress_interval)
        if self.db_preset not in DB_PRESETS:
            return 'db_preset %r is not one of %s' % (self.db_preset, ', '.join(DB_PRESETS))
        if not valid_date(self.max_template_date):
            return 'max_template_date %r is not a date of the form YYYY-MM-DD' % self.max_template_date
        if self.cpus < 1:
            return 'cpus must be at least 1, got %d' % self.cpus
        if self.timeout is not None and self.timeout <= 0:
            return 'timeout must be a positive number of seconds, got %g' % self.timeout
        if self.model_preset not in MODEL_PRESETS:
            return 'model_preset %r is not one of %s' % (self.model_preset, ', '.join(MODEL_PRESETS))
        if self.multimer and self.msa_paths:
            return '--msa replaces the searches of a monomer target; the multimer preset searches every chain'
        problem = self._msa_mode_problem()
        if problem:
            return problem
        unknown = sorted(set(self.binary_paths) - set(TOOLS))
        return 'unknown tool(s) %s' % ', '.join(unknown) if unknown else None

    def _msa_mode_problem(self):
        if self.msa_mode not in MSA_MODES:
            return 'msa_mode %r is not one of %s' % (self.msa_mode, ', '.join(MSA_MODES))
        if self.msa_mode == JACKHMMER:
            return None
        if self.msa_paths:
            return '--msa gives the MSA and --msa-mode %s searches for one: pass one of them' % MMSEQS2
        if self.db_preset != 'full_dbs':
            return ('--db-preset %s chooses among DeepMind\'s searches, which --msa-mode %s replaces: leave '
                    '--db-preset out' % (self.db_preset, MMSEQS2))
        return None


@dataclass
class GpuStageOptions:
    """What the GPU stage is asked to do. buckets None: no padding (alphafold-predict) or the
    site's list (alphafold-batch); use_gpu_relax None: relax on the GPU when one is visible."""
    data_dir: Optional[str] = None
    model_preset: str = 'monomer'
    models: Optional[str] = None
    num_recycle: Optional[int] = None
    random_seed: int = 0
    models_to_relax: str = 'best'
    use_gpu_relax: Optional[bool] = None
    memory_mode: str = site_config.Memory.mode
    mem_fraction: Optional[float] = None
    unified_threshold: int = site_config.Memory.unified_threshold
    require_gpu: bool = False
    result_pkl: bool = True
    buckets: Optional[Tuple[int, ...]] = None
    compile_cache_dir: Optional[str] = None
    plots: bool = True
    overwrite: bool = False
    progress_interval: float = 60.0
    num_seeds: int = 1

    def check(self):
        if self.progress_interval < MIN_PROGRESS_INTERVAL:
            return progress_problem(self.progress_interval)
        if self.num_seeds < 1:
            return 'num_seeds must be at least 1, got %d' % self.num_seeds
        if self.num_seeds > MAX_SEEDS:
            return 'num_seeds must be at most %d predictions per model, got %d' % (MAX_SEEDS, self.num_seeds)
        if self.model_preset not in MODEL_PRESETS:
            return 'model_preset %r is not one of %s' % (self.model_preset, ', '.join(MODEL_PRESETS))
        if self.models_to_relax not in RELAX_CHOICES:
            return 'models_to_relax %r is not one of %s' % (self.models_to_relax, ', '.join(RELAX_CHOICES))
        if self.memory_mode not in site_config.MEMORY_MODES:
            return 'memory mode %r is not one of %s' % (self.memory_mode, ', '.join(site_config.MEMORY_MODES))
        if self.num_recycle is not None and not 0 <= self.num_recycle <= MAX_RECYCLE:
            return 'num_recycle must be between 0 and %d, got %d' % (MAX_RECYCLE, self.num_recycle)
        if self.mem_fraction is not None and not 0 < self.mem_fraction <= 64:
            return 'mem_fraction must be above 0 and at most 64, got %g' % self.mem_fraction
        if self.unified_threshold < 1:
            return 'unified_threshold must be at least 1, got %d' % self.unified_threshold
        if self.buckets and min(self.buckets) < 1:
            return 'length buckets must be positive'
        from fold_runtime.gpu_stage.weights import PRESET_MODELS, select_models   # no jax: names only
        select_models(self.model_preset, self.models)
        return seed_problem(self.random_seed, len(PRESET_MODELS[self.model_preset]) * self.num_seeds)


def progress_problem(interval):
    return 'progress_interval must be a positive number of seconds, at least %g, got %g' % (MIN_PROGRESS_INTERVAL,
                                                                                          interval)


def seed_problem(random_seed, predictions):
    """Prediction i of n gets seed i + random_seed * n (run_alphafold.py's rule): every one must fit."""
    top = 2 ** SEED_BITS // predictions
    if not -top <= random_seed < top:
        return ('random_seed must be between %d and %d with %d predictions per target (their seeds i + random_seed * '
                '%d must stay below 2^%d), got %d' % (-top, top - 1, predictions, predictions, SEED_BITS, random_seed))
    return None


def valid_date(text):
    try:
        datetime.datetime.strptime(text, '%Y-%m-%d')
        return True
    except (TypeError, ValueError):
        return False


def cpu_options(values):
    return typed.build(CpuStageOptions, values, 'option', FIX)


def gpu_options(values):
    return typed.build(GpuStageOptions, values, 'option', FIX)


# ---- the data directory -------------------------------------------------------------------------

def resolve_data_dir(data_dir):
    """--data-dir, else $ALPHAFOLD_DATA_DIR, else the site config's node-local copy when its stamp
    matches the shared manifest, else the shared copy (data_sync.layout's rule). Decided in the
    job, on its node: a login node's choice would be wrong on the compute node."""
    chosen = site_config.resolve(data_dir, 'ALPHAFOLD_DATA_DIR', _site_data_dir)
    return os.path.abspath(chosen) if chosen else None


def _site_data_dir():
    site = site_config.current()
    if not site.path or not site.data.shared_root:
        return None
    from data_sync.layout import choose_data_dir
    chosen, reason = choose_data_dir(site.data.shared_root, site.data.local_root)
    log.info('data directory %s (%s)', chosen, reason)
    return chosen


# ---- command-line options -------------------------------------------------------------------------

def add(parser, name, *aliases, **kwargs):
    """An option with dashes, plus AlphaFold's underscore spelling and any extra aliases."""
    names = [name]
    for alias in ('--' + name[2:].replace('-', '_'),) + aliases:
        if alias not in names:
            names.append(alias)
    parser.add_argument(*names, **kwargs)


def default_cpus():
    """$SLURM_CPUS_PER_TASK inside a Slurm job, else the CPUs this process may run on."""
    if os.environ.get('SLURM_CPUS_PER_TASK', '').isdigit():
        return int(os.environ['SLURM_CPUS_PER_TASK'])
    return len(os.sched_getaffinity(0))


def fasta_list(values):
    """--fasta a.fa b.fa, or AlphaFold's comma-separated --fasta_paths=a.fa,b.fa."""
    return [p for v in values or () for p in v.split(',') if p]


def add_cpu_stage_options(parser, for_gpu_stage=False):
    """The CPU stage's options. The GPU stage accepts them too, so CPU and GPU job scripts can
    pass identical arguments; there --db-preset and --max-template-date, when given, are checked
    against the features' meta instead of defaulting."""
    add(parser, '--fasta', '--fasta_paths', nargs='+', required=not for_gpu_stage, metavar='PATH',
        help='FASTA files, one target each, named after the file: one protein, or with --model-preset multimer '
             "one complex (its records are the chains, or one record joins them with ':')")
    add(parser, '--output-dir', required=not for_gpu_stage, help='outputs go to OUTPUT_DIR/<target>/')
    add(parser, '--data-dir', help='AlphaFold databases and params/ (default: $ALPHAFOLD_DATA_DIR, else the '
                                   "site config's node-local copy when staged, else its shared copy)")
    if not for_gpu_stage:   # the GPU stage's own --model-preset serves both stages there
        add(parser, '--model-preset', choices=MODEL_PRESETS, default='monomer',
            help="multimer: AlphaFold-Multimer's features, each FASTA file one complex: per unique chain the "
                 'monomer searches with templates from pdb_seqres (hmmsearch), plus UniProt for MSA pairing '
                 'when the chains differ; the data directory needs uniprot/ and pdb_seqres/. Every other preset '
                 'makes the same monomer features (default: %(default)s)')
    add(parser, '--db-preset', choices=DB_PRESETS, default=None if for_gpu_stage else 'full_dbs',
        help='full_dbs: HHblits on BFD+UniRef30; reduced_dbs: jackhmmer on small BFD (default: full_dbs)')
    add(parser, '--max-template-date', default=None if for_gpu_stage else '2100-01-01', metavar='YYYY-MM-DD',
        help='ignore templates released after this date (default: 2100-01-01)')
    add(parser, '--cpus', type=int, default=default_cpus(),
        help='CPUs to split among the searches 8:8:4 (multimer: shared by the chains searched, UniProt as '
             'UniRef90) (default: $SLURM_CPUS_PER_TASK, else the '
             'CPUs available: %(default)s)')
    add(parser, '--serial', action='store_true',
        help='run the searches one after another, in the stock order (for comparison)')
    add(parser, '--timeout', type=float, metavar='SECONDS', help='limit for each search')
    add(parser, '--overwrite', action='store_true',
        help='recompute even when outputs from other inputs exist; the GPU stage predicts again models '
             'that the target directory already holds from the same features and options')
    add(parser, '--progress-interval', type=float, default=60.0, metavar='SECONDS',
        help='while a search, compile, prediction or relaxation runs, log a line naming it and its elapsed '
             'time every SECONDS (default: %(default)s)')
    add(parser, '--no-templates', action='store_true',
        help='skip the template search: features without templates, as AlphaFold makes them when it '
             'finds none')
    add(parser, '--msa-mode', choices=MSA_MODES, default=None if for_gpu_stage else JACKHMMER,
        help="jackhmmer: DeepMind's searches (default). mmseqs2: ColabFold's MMseqs2 search (colabfold_search's "
             "commands and parameters) on ColabFold's UniRef30 and environmental databases under "
             'DATA_DIR/colabfold/ makes one A3M, used as --msa is (templates by HHsearch on pdb70 from it): not '
             'DeepMind\'s MSA (--explain says what differs). Multimer: each chain\'s A3M is its unpaired MSA, '
             'UniProt (jackhmmer) pairs the chains as in AlphaFold-Multimer, templates by hmmsearch from the A3M')
    add(parser, '--msa', nargs='+', metavar='A3M',
        help='precomputed MSAs (A3M, the query first), one per --fasta target in order, used instead of '
             "the MSA searches; the template search still runs on it, as ColabFold's does (unless "
             '--no-templates). alphafold-batch: one directory holding <target>.a3m for every target')
    add(parser, '--feature-cache', metavar='DIR',
        help="shared, content-addressed cache of CPU-stage results (default: $ALPHAFOLD_FEATURE_CACHE, else the "
             "site config's [cache] feature_cache)")
    for tool in TOOLS:
        add(parser, '--%s-binary' % tool, '--%s_binary_path' % tool, metavar='PATH',
            help='%s executable (default: from PATH)' % tool)


def add_gpu_stage_options(parser):
    add(parser, '--target-dir', nargs='+', metavar='DIR',
        help='target directories holding features.pkl (instead of --fasta/--output-dir)')
    add(parser, '--model-preset', choices=MODEL_PRESETS, default='monomer', help='default: %(default)s')
    add(parser, '--models', metavar='LIST',
        help='comma-separated subset of the preset, e.g. model_1,model_3 (skip low scorers); multimer: v3 '
             'weights, earlier ones by name (model_1_multimer_v2, model_1_multimer)')
    add(parser, '--num-recycle', type=int,
        help='recycling iterations, 0 to %d (default: the model config: 3 for monomers; multimer up to 20, '
             'stopping early as DeepMind\'s does)' % MAX_RECYCLE)
    add(parser, '--random-seed', type=int, default=0,
        help='prediction i gets seed i + random_seed * number of predictions, as in AlphaFold (default: '
             '%(default)s)')
    add(parser, '--num-seeds', '--num-multimer-predictions-per-model', '--num_multimer_predictions_per_model',
        type=int, metavar='N',
        help="N predictions per model with AlphaFold's seeds, all ranked together, named <model>_pred_<k> as "
             'AlphaFold names multimer predictions (monomers: only when N > 1). AlphaFold\'s '
             '--num-multimer-predictions-per-model is the same option (default: 5 for multimer, as in '
             'AlphaFold, else 1)')
    add(parser, '--models-to-relax', choices=RELAX_CHOICES, default='best',
        help='AMBER-relax only the best model (by pLDDT; multimer: by 0.8*ipTM + 0.2*pTM) (default), all, '
             'or none')
    relax = parser.add_mutually_exclusive_group()
    relax.add_argument('--use-gpu-relax', '--use_gpu_relax', dest='use_gpu_relax', action='store_true',
                       default=None, help='relax on the GPU (default: when a GPU is visible)')
    relax.add_argument('--no-gpu-relax', '--nouse_gpu_relax', dest='use_gpu_relax', action='store_false')
    add(parser, '--memory-mode', choices=site_config.MEMORY_MODES,
        help='unified: TF_FORCE_UNIFIED_MEMORY=1 and XLA_PYTHON_CLIENT_MEM_FRACTION (XLA\'s default allocator); '
             "auto: unified above --unified-threshold residues (default: $ALPHAFOLD_MEMORY_MODE, else the site "
             "config's [memory] mode, else %s)" % site_config.Memory.mode)
    add(parser, '--mem-fraction', type=float,
        help="XLA_PYTHON_CLIENT_MEM_FRACTION (default: $ALPHAFOLD_MEM_FRACTION, else the site config's [memory] "
             'mem_fraction, else 4.0 in unified mode)')
    add(parser, '--unified-threshold', type=int,
        help="length above which auto picks unified memory (default: $ALPHAFOLD_UNIFIED_THRESHOLD, else the site "
             "config's [memory] unified_threshold, else %d)" % site_config.Memory.unified_threshold)
    add(parser, '--require-gpu', action='store_true', help='fail unless a GPU is visible')
    add(parser, '--no-result-pkl', action='store_true', help='skip the large result_<model>.pkl files')
    add(parser, '--no-plots', action='store_true',
        help='skip the per-target pictures (plddt.png, pae.png, msa_coverage.png)')
    add(parser, '--buckets', metavar='EDGES',
        help='pad targets up to these lengths (e.g. 64,128,256) so one compiled model serves many '
             'proteins; outputs are cropped back (default: none here; alphafold-batch uses the '
             "site config's [batch] length_buckets, else a ColabFold-style list)")
    add(parser, '--compile-cache-dir',
        help="persistent JAX compilation cache shared across jobs (default: $ALPHAFOLD_JAX_CACHE_DIR, else the "
             "site config's [cache] jax_cache)")


class Explain(argparse.Action):
    """--explain: what the kit changes in the installed AlphaFold, and why (then exit)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help='list what the kit changes in the installed AlphaFold to give DeepMind '
                              "v2.3.2's results, and why, and what --msa-mode mmseqs2 changes, then exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from fold_runtime.compat import fidelity
        from fold_runtime.cpu_stage import colabfold_search
        print(fidelity.report())
        print(colabfold_search.EXPLAIN)
        parser.exit()


def cpu_stage_parser(prog='alphafold-msa'):
    p = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        description='AlphaFold CPU stage: run the MSA and template searches concurrently and '
                    'write <output-dir>/<target>/features.pkl for the GPU stage.',
        epilog='example:\n  %s --fasta T1050.fasta --output-dir out --data-dir /data/alphafold '
               '--cpus 20\n\n%s' % (prog, EXIT_HELP))
    add_cpu_stage_options(p)
    p.add_argument('--explain', action=Explain)
    p.add_argument('--version', action='version', version=fold_runtime.version_text())
    return p


def gpu_stage_parser(prog, description):
    p = argparse.ArgumentParser(allow_abbrev=False, prog=prog, description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_HELP)
    add_cpu_stage_options(p.add_argument_group('targets and CPU stage'), for_gpu_stage=True)
    add_gpu_stage_options(p.add_argument_group('GPU stage'))
    p.add_argument('--explain', action=Explain)
    p.add_argument('--version', action='version', version=fold_runtime.version_text())
    return p


def _first(*values):
    return next((v for v in values if v is not None), None)


def cpu_options_from_args(args):
    site = site_config.current()
    return cpu_options(dict(
        data_dir=args.data_dir, db_preset=args.db_preset or 'full_dbs',
        max_template_date=args.max_template_date or '2100-01-01', cpus=args.cpus, serial=args.serial,
        timeout=args.timeout, overwrite=args.overwrite, progress_interval=args.progress_interval,
        feature_cache=site_config.resolve(args.feature_cache, 'ALPHAFOLD_FEATURE_CACHE', site.cache.feature_cache),
        binary_paths={t: getattr(args, t + '_binary') for t in TOOLS},
        templates=not args.no_templates, msa_paths=tuple(os.path.abspath(p) for p in args.msa or ()),
        model_preset=args.model_preset, msa_mode=args.msa_mode or JACKHMMER))


def gpu_options_from_args(args):
    buckets = None
    if args.buckets is not None:
        try:
            buckets = site_config.length_edges(args.buckets)
        except ValueError as exc:
            raise KitError('--buckets %r: give %s' % (args.buckets, exc), FIX, EXIT_INPUT)
    site = site_config.current()
    return gpu_options(dict(
        data_dir=args.data_dir, model_preset=args.model_preset, models=args.models,
        num_recycle=args.num_recycle, random_seed=args.random_seed, models_to_relax=args.models_to_relax,
        use_gpu_relax=args.use_gpu_relax,
        memory_mode=site_config.resolve(args.memory_mode, 'ALPHAFOLD_MEMORY_MODE', site.memory.mode,
                                        choices=site_config.MEMORY_MODES),
        mem_fraction=site_config.resolve(args.mem_fraction, 'ALPHAFOLD_MEM_FRACTION', site.memory.mem_fraction,
                                         kind=float),
        unified_threshold=site_config.resolve(args.unified_threshold, 'ALPHAFOLD_UNIFIED_THRESHOLD',
                                              site.memory.unified_threshold, kind=int),
        require_gpu=args.require_gpu, result_pkl=not args.no_result_pkl, buckets=buckets,
        compile_cache_dir=site_config.resolve(args.compile_cache_dir, 'ALPHAFOLD_JAX_CACHE_DIR', site.cache.jax_cache),
        plots=not args.no_plots, overwrite=args.overwrite, progress_interval=args.progress_interval,
        num_seeds=_first(args.num_seeds, 5 if args.model_preset == 'multimer' else 1)))


EXECUTORS = ('local', 'slurm')


@dataclass
class BatchSettings:
    """How alphafold-batch runs: the executor, the Slurm settings (the site config's [slurm],
    overridden by submit's options), the length-bucket edges (None: the kit's default list) and
    the GPU worker's relax processes (the site config's [batch] relax_workers)."""
    executor: str = 'local'
    slurm: site_config.Slurm = field(default_factory=site_config.Slurm)
    buckets: Optional[Tuple[int, ...]] = None
    relax_workers: int = site_config.Batch.relax_workers
    relax_on_gpu: bool = site_config.Batch.relax_on_gpu

    def check(self):
        if self.executor not in EXECUTORS:
            return 'executor %r is not one of %s' % (self.executor, ', '.join(EXECUTORS))
        return None


def batch_settings(values):
    return typed.build(BatchSettings, values, 'batch setting', FIX)
