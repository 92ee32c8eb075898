"""The stages' options as typed objects, and the parsers that build them from the command line;
the options themselves (flags, help, defaults, variables, path roles) are declared once, in
fold_runtime/option_table.py.

alphafold-msa, -predict and -run build CpuStageOptions and GpuStageOptions from their command
lines; alphafold-batch stores the same objects as JSON in batch.json and its jobs read them back,
so renaming a command-line option never breaks resuming a batch. Every value, including the
kit's environment variables, is checked here, before any search or model runs.
"""
import argparse
import dataclasses
import datetime
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import fold_runtime
from data_sync.registry import MMSEQS2
from fold_runtime.option_table import (  # noqa: F401 (the choices, imported from here by the kit)
    BATCH, BATCH_OPTIONS, BY_FLAG, CACHE, CPU, DATA, DB_PRESETS, EXECUTORS, GPU, INPUTS, JACKHMMER, LOCAL, MAX_RECYCLE,
    MODEL_PRESETS, MSA_MODES, MULTIMER, OPTIONS, PROGRAM, READ_WRITE, RELAX_CHOICES, RETRY, SCREEN, SLURM, TOOLS, default)
from kit_common import site_config, typed
from kit_common.errors import EXIT_HELP, EXIT_INPUT, KitError

log = logging.getLogger(__name__)

MAX_SEEDS = 1000    # predictions per model: massive sampling (AFsample) runs about 1,000; 10^6 is a typo
SEED_BITS = 63      # prediction seeds are int64 in AlphaFold's input pipeline (run_alphafold.py stays below 2^63)
MIN_PROGRESS_INTERVAL = 0.1   # seconds; more often only floods the log
FIX = 'see --help for the accepted values'


@dataclass
class CpuStageOptions:
    """What the CPU stage is asked to do; data_dir as given (the node-local choice is made at
    run time, on the node that runs the stage)."""
    data_dir: Optional[str] = None
    db_preset: str = default('--db-preset')
    max_template_date: str = default('--max-template-date')
    cpus: int = 1
    serial: bool = False
    timeout: Optional[float] = None
    overwrite: bool = False
    feature_cache: Optional[str] = None
    binary_paths: Dict[str, Optional[str]] = field(default_factory=dict)
    progress_interval: float = default('--progress-interval')
    templates: bool = True                 # False: --no-templates, no template search
    msa_paths: Tuple[str, ...] = ()        # --msa: one precomputed A3M per target, in --fasta order
    model_preset: str = default('--model-preset')   # multimer: each FASTA file is one complex
    msa_mode: str = JACKHMMER                       # MMSEQS2: ColabFold's search makes the MSA
    mmseqs_gpu: bool = False                        # --gpu: that search on MMseqs2-GPU

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
            return '--gpu runs --msa-mode %s\'s search on a GPU: add --msa-mode %s, or leave --gpu out' % (
                MMSEQS2, MMSEQS2) if self.mmseqs_gpu else None
        if self.msa_paths:
            return '--msa gives the MSA and --msa-mode %s searches for one: pass one of them' % MMSEQS2
        if self.db_preset != default('--db-preset'):
            return ('--db-preset %s chooses among DeepMind\'s searches, which --msa-mode %s replaces: leave '
                    '--db-preset out' % (self.db_preset, MMSEQS2))
        return None


@dataclass
class GpuStageOptions:
    """What the GPU stage is asked to do. buckets None: no padding (alphafold-predict) or the
    site's list (alphafold-batch); use_gpu_relax None: relax on the GPU when one is visible."""
    data_dir: Optional[str] = None
    model_preset: str = default('--model-preset')
    models: Optional[str] = None
    num_recycle: Optional[int] = None
    random_seed: int = default('--random-seed')
    models_to_relax: str = default('--models-to-relax')
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
    progress_interval: float = default('--progress-interval')
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
        if self.num_recycle is not None and not 0 <= self.num_recycle <= MAX_RECYCLE:
            return 'num_recycle must be between 0 and %d, got %d' % (MAX_RECYCLE, self.num_recycle)
        memory = site_config.memory_problem(self.memory_mode, self.unified_threshold, self.mem_fraction, 'memory mode')
        if memory:
            return memory
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
    chosen = site_config.resolve(data_dir, BY_FLAG['--data-dir'].env, _site_data_dir)
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

def fasta_list(values):
    """--fasta a.fa b.fa, or AlphaFold's comma-separated --fasta_paths=a.fa,b.fa."""
    return [p for v in values or () for p in v.split(',') if p]


def add_option(parser, opt, for_gpu_stage=False, shown=True):
    """opt in parser. The GPU stage has no default for the CPU-stage options it checks against the
    features' meta, and requires nothing (--target-dir replaces --fasta/--output-dir); an option
    with an environment variable has its default applied after the variable and the site config."""
    declared = default(opt.flag)
    kwargs = dict(opt.kwargs, default=None if (for_gpu_stage and opt.meta_checked) or opt.env else declared,
                  help=opt.help.replace('%(default)s', str(declared)) if shown else argparse.SUPPRESS)
    if opt.required_by_cpu_stage and not for_gpu_stage:
        kwargs['required'] = True
    if not opt.off:
        parser.add_argument(*opt.names(), **kwargs)
        return
    pair = parser.add_mutually_exclusive_group()
    pair.add_argument(*opt.names(), **kwargs)
    pair.add_argument(*opt.off, dest=opt.dest, action='store_false', help=kwargs['help'] if not shown else None)


def add_stage_options(parser, stage):
    """The options of one stage (alphafold-msa's: the CPU stage's; screen's own; alphafold-batch's)."""
    for opt in OPTIONS + BATCH_OPTIONS:
        if stage in opt.stages:
            add_option(parser, opt)


def add_gpu_command_options(parser, stages, hidden=()):
    """A GPU-stage command's options, in two groups. It accepts all of them, so CPU and GPU job
    scripts can pass identical arguments, but shows only those of `stages` not in `hidden`."""
    groups = {stage: parser.add_argument_group(title) for stage, title in (('cpu', 'targets and CPU stage'),
                                                                           ('gpu', 'GPU stage'))}
    for opt in OPTIONS:
        group = groups.get(opt.stages[0])
        if not group:
            continue
        add_option(group, opt, for_gpu_stage=True,
                   shown=bool(set(opt.stages) & set(stages)) and opt.flag not in hidden)


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
    add_stage_options(p, CPU)
    return add_info_options(p)


def gpu_stage_parser(prog, description, stages=(CPU, GPU), hidden=()):
    """A GPU-stage command's parser; its --help shows the options of `stages` not in `hidden`."""
    p = argparse.ArgumentParser(allow_abbrev=False, prog=prog, description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXIT_HELP)
    add_gpu_command_options(p, stages, hidden)
    return add_info_options(p)


def add_info_options(p):
    """--explain and --version, which answer and exit; p, for the parser builders."""
    p.add_argument('--explain', action=Explain)
    p.add_argument('--version', action='version', version=fold_runtime.version_text())
    return p


def _from_args(args, stage, cls):
    """The fields of cls that stage's options set, each by the kit's precedence: command line >
    environment > site config > default (the meta-checked ones have no default on the GPU stage)."""
    site = site_config.current()
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for opt in OPTIONS:
        if stage not in opt.stages or opt.field not in fields:
            continue
        given = getattr(args, opt.dest)
        if opt.invert:
            values[opt.field] = not given
        elif opt.key:
            values.setdefault(opt.field, {})[opt.key] = given
        elif opt.path == DATA:   # resolved on the node that runs the stage
            values[opt.field] = given
        elif opt.path == INPUTS:
            values[opt.field] = tuple(os.path.abspath(p) for p in given or ())
        else:
            site_value = getattr(getattr(site, opt.site[0]), opt.site[1]) if opt.site else None
            values[opt.field] = site_config.resolve(given, opt.env, site_value, default(opt.flag), opt.kind,
                                                    opt.kwargs.get('choices', ()))
    return values


def cpu_options_from_args(args):
    return cpu_options(_from_args(args, CPU, CpuStageOptions))


def gpu_options_from_args(args):
    values = _from_args(args, GPU, GpuStageOptions)
    if args.buckets is not None:
        try:
            values['buckets'] = site_config.length_edges(args.buckets)
        except ValueError as exc:
            raise KitError('--buckets %r: give %s' % (args.buckets, exc), FIX, EXIT_INPUT)
    if values['num_seeds'] is None:   # AlphaFold's default
        values['num_seeds'] = 5 if args.model_preset == MULTIMER else 1
    return gpu_options(values)


def absolute_paths(opts):
    """opts with every path absolute (a batch's jobs then resolve them as submit did)."""
    changes = {}
    for opt in OPTIONS:
        if opt.path in (DATA, READ_WRITE, CACHE, PROGRAM) and hasattr(opts, opt.field):
            value = getattr(opts, opt.field)
            if opt.key:
                value = changes.setdefault(opt.field, dict(value))
                value[opt.key] = _absolute(value[opt.key])
            else:
                changes[opt.field] = _absolute(value)
    return dataclasses.replace(opts, **changes)


def _absolute(path):
    return os.path.abspath(path) if path else path


@dataclass
class BatchSettings:
    """How alphafold-batch runs: the executor, the Slurm settings (the site config's [slurm],
    overridden by submit's options), the length-bucket edges (None: the kit's default list) and
    the GPU worker's relax processes (the site config's [batch] relax_workers)."""
    executor: str = default('--executor')
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
