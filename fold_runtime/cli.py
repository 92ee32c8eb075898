"""Command lines: alphafold-msa (and python -m fold_runtime msa)."""
import argparse
import os
import signal
import sys

from fold_runtime import errors
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


def add_cpu_stage_options(parser):
    add(parser, '--fasta', '--fasta_paths', nargs='+', required=True, metavar='PATH',
        help='FASTA files, one monomer target each, named after the file')
    add(parser, '--output-dir', required=True, help='outputs go to OUTPUT_DIR/<target>/')
    add(parser, '--data-dir', default=os.environ.get('ALPHAFOLD_DATA_DIR'),
        help='AlphaFold databases (default: $ALPHAFOLD_DATA_DIR)')
    add(parser, '--db-preset', choices=('full_dbs', 'reduced_dbs'), default='full_dbs',
        help='full_dbs: HHblits on BFD+UniRef30; reduced_dbs: jackhmmer on small BFD (default: %(default)s)')
    add(parser, '--max-template-date', default='2100-01-01', metavar='YYYY-MM-DD',
        help='ignore templates released after this date (default: %(default)s, i.e. all)')
    add(parser, '--cpus', type=int, default=default_cpus(),
        help='CPUs to split among the searches 8:8:4 (default: $SLURM_CPUS_PER_TASK, else the '
             'CPUs available: %(default)s)')
    add(parser, '--serial', action='store_true',
        help='run the searches one after another, in the stock order (for comparison)')
    add(parser, '--timeout', type=float, metavar='SECONDS', help='limit for each search')
    add(parser, '--overwrite', action='store_true',
        help='recompute even when outputs from other inputs exist')
    for tool in ('jackhmmer', 'hhblits', 'hhsearch', 'kalign'):
        add(parser, '--%s-binary' % tool, '--%s_binary_path' % tool, metavar='PATH',
            help='%s executable (default: from PATH)' % tool)


def msa_parser(prog='alphafold-msa'):
    p = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description='AlphaFold CPU stage: run the MSA and template searches concurrently and '
                    'write <output-dir>/<target>/features.pkl for the GPU stage.',
        epilog='example:\n  %s --fasta T1050.fasta --output-dir out --data-dir /data/alphafold '
               '--cpus 20\n\n%s' % (prog, errors.EXIT_HELP))
    add_cpu_stage_options(p)
    return p


def cpu_stage_options(args):
    from fold_runtime.msa_stage import Options
    if args.cpus < 1:
        raise KitError('--cpus must be at least 1, got %d' % args.cpus, 'pass --cpus N with N >= 1')
    return Options(output_dir=os.path.abspath(args.output_dir),
                   data_dir=os.path.abspath(args.data_dir) if args.data_dir else None,
                   db_preset=args.db_preset, max_template_date=args.max_template_date,
                   cpus=args.cpus, serial=args.serial, timeout=args.timeout,
                   overwrite=args.overwrite,
                   binary_paths={t: getattr(args, t + '_binary')
                                 for t in ('jackhmmer', 'hhblits', 'hhsearch', 'kalign')})


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
