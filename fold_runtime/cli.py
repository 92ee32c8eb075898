"""Command lines: alphafold-msa, alphafold-predict, alphafold-run (and python -m fold_runtime ...)."""
import argparse
import os
import signal
import sys

from fold_runtime import errors
from fold_runtime.binaries import PACKAGES as TOOLS
from fold_runtime.errors import KitError


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
    return [p for v in values for p in v.split(',') if p]


def add_cpu_stage_options(parser, for_gpu_stage=False):
    """The CPU stage's options. The GPU stage accepts them too, so CPU and GPU job scripts can
    pass identical arguments; there --db-preset and --max-template-date, when given, are checked
    against the features' meta instead of defaulting."""
    add(parser, '--fasta', '--fasta_paths', nargs='+', required=not for_gpu_stage, metavar='PATH',
        help='FASTA files, one monomer target each, named after the file')
    add(parser, '--output-dir', required=not for_gpu_stage, help='outputs go to OUTPUT_DIR/<target>/')
    add(parser, '--data-dir', default=os.environ.get('ALPHAFOLD_DATA_DIR'),
        help='AlphaFold databases and params/ (default: $ALPHAFOLD_DATA_DIR)')
    add(parser, '--db-preset', choices=('full_dbs', 'reduced_dbs'),
        default=None if for_gpu_stage else 'full_dbs',
        help='full_dbs: HHblits on BFD+UniRef30; reduced_dbs: jackhmmer on small BFD (default: %(default)s)')
    add(parser, '--max-template-date', default=None if for_gpu_stage else '2100-01-01', metavar='YYYY-MM-DD',
        help='ignore templates released after this date (default: %(default)s)')
    add(parser, '--cpus', type=int, default=default_cpus(),
        help='CPUs to split among the searches 8:8:4 (default: $SLURM_CPUS_PER_TASK, else the '
             'CPUs available: %(default)s)')
    add(parser, '--serial', action='store_true',
        help='run the searches one after another, in the stock order (for comparison)')
    add(parser, '--timeout', type=float, metavar='SECONDS', help='limit for each search')
    add(parser, '--overwrite', action='store_true',
        help='recompute even when outputs from other inputs exist')
    add(parser, '--feature-cache', default=os.environ.get('ALPHAFOLD_FEATURE_CACHE'), metavar='DIR',
        help='shared, content-addressed cache of CPU-stage results (default: $ALPHAFOLD_FEATURE_CACHE)')
    for tool in TOOLS:
        add(parser, '--%s-binary' % tool, '--%s_binary_path' % tool, metavar='PATH',
            help='%s executable (default: from PATH)' % tool)


def add_gpu_stage_options(parser):
    env = os.environ.get
    add(parser, '--target-dir', nargs='+', metavar='DIR',
        help='target directories holding features.pkl (instead of --fasta/--output-dir)')
    add(parser, '--model-preset', choices=('monomer', 'monomer_ptm', 'monomer_casp14'),
        default='monomer', help='default: %(default)s')
    add(parser, '--models', metavar='LIST',
        help='comma-separated subset of the preset, e.g. model_1,model_3 (skip low scorers)')
    add(parser, '--num-recycle', type=int, help='recycling iterations (default: the model config, 3)')
    add(parser, '--random-seed', type=int, default=0,
        help='model i gets seed i + random_seed * num_models, as in AlphaFold (default: %(default)s)')
    add(parser, '--models-to-relax', choices=('best', 'all', 'none'), default='best',
        help='AMBER-relax only the best model by pLDDT (default), all, or none')
    relax = parser.add_mutually_exclusive_group()
    relax.add_argument('--use-gpu-relax', '--use_gpu_relax', dest='use_gpu_relax', action='store_true',
                       default=None, help='relax on the GPU (default: when a GPU is visible)')
    relax.add_argument('--no-gpu-relax', '--nouse_gpu_relax', dest='use_gpu_relax', action='store_false')
    add(parser, '--memory-mode', choices=('auto', 'default', 'unified'),
        default=env('ALPHAFOLD_MEMORY_MODE', 'auto'),
        help='unified: TF_FORCE_UNIFIED_MEMORY=1, XLA_PYTHON_CLIENT_MEM_FRACTION, platform allocator; '
             'auto: unified above --unified-threshold residues (default: %(default)s)')
    add(parser, '--mem-fraction', type=float, default=_float(env('ALPHAFOLD_MEM_FRACTION')),
        help='XLA_PYTHON_CLIENT_MEM_FRACTION (default 4.0 in unified mode)')
    add(parser, '--unified-threshold', type=int, default=int(env('ALPHAFOLD_UNIFIED_THRESHOLD', '1200')),
        help='length above which auto picks unified memory (default: %(default)s)')
    add(parser, '--require-gpu', action='store_true', help='fail unless a GPU is visible')
    add(parser, '--no-result-pkl', action='store_true',
        help='skip the large result_<model>.pkl files')
    add(parser, '--buckets', metavar='EDGES',
        help='pad targets up to these lengths (e.g. 64,128,256) so one compiled model serves many '
             'proteins; outputs are cropped back (default: none here; alphafold-batch uses the '
             "site config's [batch] length_buckets, else a ColabFold-style list)")
    add(parser, '--compile-cache-dir', default=env('ALPHAFOLD_JAX_CACHE_DIR'),
        help='persistent JAX compilation cache shared across jobs (default: $ALPHAFOLD_JAX_CACHE_DIR)')


def _float(value):
    return float(value) if value else None


def msa_parser(prog='alphafold-msa'):
    p = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description='AlphaFold CPU stage: run the MSA and template searches concurrently and '
                    'write <output-dir>/<target>/features.pkl for the GPU stage.',
        epilog='example:\n  %s --fasta T1050.fasta --output-dir out --data-dir /data/alphafold '
               '--cpus 20\n\n%s' % (prog, errors.EXIT_HELP))
    add_cpu_stage_options(p)
    return p


def resolve_data_dir(args):
    """--data-dir, else $ALPHAFOLD_DATA_DIR, else the site config's node-local copy when its stamp
    matches the shared manifest, else the shared copy (the modulefile's rule)."""
    if args.data_dir:
        return os.path.abspath(args.data_dir)
    from data_sync.layout import choose_data_dir
    from fold_runtime import site_config
    data = site_config.load()['data']
    if not os.environ.get('ALPHAFOLD_SITE_CONFIG') or not data['shared_root']:
        return None
    chosen, reason = choose_data_dir(data['shared_root'], data['local_root'])
    log('data directory %s (%s)' % (chosen, reason))
    return chosen


def cpu_stage_options(args):
    from data_sync.layout import MANIFEST_ID_FILE, read_id
    from fold_runtime.msa_stage import Options
    if args.cpus < 1:
        raise KitError('--cpus must be at least 1, got %d' % args.cpus, 'pass --cpus N with N >= 1')
    data_dir = resolve_data_dir(args)
    return Options(output_dir=os.path.abspath(args.output_dir),
                   data_dir=data_dir,
                   manifest_id=read_id(os.path.join(data_dir, MANIFEST_ID_FILE)) or None if data_dir else None,
                   db_preset=args.db_preset, max_template_date=args.max_template_date,
                   cpus=args.cpus, serial=args.serial, timeout=args.timeout,
                   overwrite=args.overwrite, feature_cache=args.feature_cache,
                   binary_paths={t: getattr(args, t + '_binary')
                                 for t in TOOLS})


def log(message):
    print(message, file=sys.stderr, flush=True)


def run_msa(args):
    from fold_runtime import fasta, msa_stage
    targets = fasta.read_targets(fasta_list(args.fasta))
    opts = cpu_stage_options(args)
    env = msa_stage.Environment(opts)
    for target in targets:
        timings = msa_stage.run_target(target, opts, env, log=log)
        for key in sorted(timings):
            log('  %-26s %8.1f s' % (key, timings[key]))
    return 0


def gpu_targets(args):
    """(target dir, expected meta keys) for each target of a GPU-stage command."""
    from fold_runtime import fasta, meta
    checks = {k: v for k, v in (('db_preset', args.db_preset), ('max_template_date', args.max_template_date)) if v}
    if args.target_dir:
        return [(os.path.abspath(d), dict(checks)) for d in args.target_dir]
    if not (args.fasta and args.output_dir):
        raise KitError('no targets given', 'pass --fasta and --output-dir (as for alphafold-msa), or --target-dir')
    return [(os.path.join(os.path.abspath(args.output_dir), t.name),
             dict(checks, sequence_sha256=meta.sequence_sha256(t.sequence)))
            for t in fasta.read_targets(fasta_list(args.fasta))]


def start_gpu_stage(args, max_length, buckets=()):
    """What a GPU-stage process does once, before its targets: the memory policy (before jax
    starts: XLA reads it once), the compile clock and cache, the GPU check, and the weights."""
    from fold_runtime import memory, predict_stage
    memory.apply(args.memory_mode, max_length, args.mem_fraction, args.unified_threshold, log=log)
    from fold_runtime import jax_setup
    clock = jax_setup.CompileClock()
    jax_setup.use_compilation_cache(args.compile_cache_dir, log=log)
    gpus = jax_setup.gpu_count()
    if args.require_gpu and not gpus:
        raise KitError('no GPU is visible to jax (--require-gpu)',
                       'run on a GPU node (e.g. sbatch --gres=gpu:1), check CUDA_VISIBLE_DEVICES, and '
                       'use the image variant for your CUDA driver', errors.EXIT_GPU)
    data_dir = resolve_data_dir(args)
    if not data_dir:
        raise KitError('no data directory given for the weights', 'pass --data-dir or set ALPHAFOLD_DATA_DIR',
                       errors.EXIT_MISSING)
    opts = predict_stage.Options(
        data_dir=data_dir, model_preset=args.model_preset, models=args.models,
        num_recycle=args.num_recycle, random_seed=args.random_seed, models_to_relax=args.models_to_relax,
        use_gpu_relax=bool(gpus) if args.use_gpu_relax is None else args.use_gpu_relax,
        result_pkl=not args.no_result_pkl, buckets=buckets)
    return opts, predict_stage.Models(opts, log=log), clock


def run_predict(args):
    from fold_runtime import padding, predict_stage
    loaded = [(tdir,) + predict_stage.load_features(tdir, expected) for tdir, expected in gpu_targets(args)]
    buckets = padding.parse_edges(args.buckets) if args.buckets else ()
    opts, models, clock = start_gpu_stage(args, max(m['sequence_length'] for _, _, m in loaded), buckets)
    for tdir, feats, _ in loaded:
        log('%s: predicting with %s (seed %d)' % (os.path.basename(tdir), ', '.join(models.names), opts.random_seed))
        ranked, _ = predict_stage.predict_target(tdir, feats, models, opts, clock, log=log)
        log('%s: ranked_0.pdb is %s' % (os.path.basename(tdir), ranked[0]))
    return 0


def run_run(args):
    """Both stages; the CPU stage is skipped for targets whose features.pkl matches its meta."""
    if args.target_dir:
        raise KitError('alphafold-run needs --fasta and --output-dir', 'use alphafold-predict for --target-dir')
    args.db_preset = args.db_preset or 'full_dbs'
    args.max_template_date = args.max_template_date or '2100-01-01'
    run_msa(args)
    return run_predict(args)


def _terminate(signum, frame):
    # Slurm's scancel and time limits send SIGTERM: unwind so child searches are killed too.
    raise SystemExit(128 + signum)


def guarded(func, args, prog):
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return func(args)
    except KitError as exc:
        print('%s: error: %s' % (prog, exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def msa_main(argv=None):
    args = msa_parser().parse_args(argv)
    sys.exit(guarded(run_msa, args, 'alphafold-msa'))


def gpu_parser(prog, description, for_gpu_stage):
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=errors.EXIT_HELP)
    add_cpu_stage_options(p.add_argument_group('targets and CPU stage'), for_gpu_stage)
    add_gpu_stage_options(p.add_argument_group('GPU stage'))
    return p


def predict_main(argv=None):
    args = gpu_parser('alphafold-predict', 'AlphaFold GPU stage: predict from a verified features.pkl, '
                      'rank by pLDDT and relax only the best model. Takes the same --fasta and '
                      '--output-dir as alphafold-msa.', True).parse_args(argv)
    sys.exit(guarded(run_predict, args, 'alphafold-predict'))


def run_main(argv=None):
    args = gpu_parser('alphafold-run', 'AlphaFold, both stages: the CPU stage (skipped when a matching '
                      'features.pkl exists), then the GPU stage.', True).parse_args(argv)
    sys.exit(guarded(run_run, args, 'alphafold-run'))


def stage_args(run_args, output_dir):
    """The alphafold-run options a batch was submitted with, parsed again inside its jobs."""
    args = gpu_parser('alphafold-run', '', True).parse_args(list(run_args))
    args.output_dir = output_dir
    args.db_preset = args.db_preset or 'full_dbs'
    args.max_template_date = args.max_template_date or '2100-01-01'
    return args
