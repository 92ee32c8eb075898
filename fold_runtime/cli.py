"""Command lines: alphafold-msa, alphafold-predict, alphafold-run (and python -m fold_runtime ...).

Each command parses its options into typed objects (fold_runtime.options), checks them all, and
only then starts a search or loads a model.
"""
import logging
import os

from data_sync.registry import MMSEQS2
from fold_runtime import fasta, meta, options
from kit_common import entry
from kit_common.errors import KitError

log = logging.getLogger(__name__)

PREDICT_HELP = ('AlphaFold GPU stage: predict from a verified features.pkl, rank by pLDDT (complexes: by '
                '0.8*ipTM + 0.2*pTM) and relax only the best model. Takes the same --fasta and --output-dir as '
                'alphafold-msa, and accepts its other options too (unused), so both stages\' job scripts can '
                'pass the same arguments.')
RUN_HELP = ('AlphaFold, both stages: the CPU stage (skipped when a matching features.pkl exists), then '
            'the GPU stage.')


def run_msa(args, cpu_opts=None, then_predict=False):
    """then_predict: alphafold-run, whose targets must suit the GPU stage too."""
    from fold_runtime.cpu_stage import stage, user_msa
    cpu_opts = cpu_opts or options.cpu_options_from_args(args)
    targets = fasta.read_targets(options.fasta_list(args.fasta), cpu_opts.multimer)
    fasta.check_lengths(targets, search=True, model=then_predict)
    msas = user_msa.load_all(cpu_opts.msa_paths, targets)   # every file checked before any search
    env = stage.Environment(cpu_opts)
    for target, msa in zip(targets, msas):
        timings = stage.run_target(target, os.path.abspath(args.output_dir), env, msa)
        for key in sorted(timings):
            log.info('  %-26s %8.1f s', key, timings[key])
    return 0


def gpu_targets(args):
    """(target dir, expected meta keys) for each target of a GPU-stage command: the CPU-stage
    options given are checked against the features' meta."""
    checks = {k: v for k, v in (('db_preset', args.db_preset), ('max_template_date', args.max_template_date),
                                ('no_templates', args.no_templates)) if v}
    if args.msa_mode:   # features of the default mode record no msa_mode
        checks['msa_mode'] = args.msa_mode if args.msa_mode == MMSEQS2 else None
    if args.target_dir:
        if args.msa:
            raise KitError('--msa is checked against the --fasta targets', 'pass --fasta and --output-dir with '
                           '--msa, or leave --msa out with --target-dir')
        return [(os.path.abspath(d), dict(checks)) for d in args.target_dir]
    if not (args.fasta and args.output_dir):
        raise KitError('no targets given', 'pass --fasta and --output-dir (as for alphafold-msa), or --target-dir')
    from fold_runtime.cpu_stage import user_msa
    targets = fasta.read_targets(options.fasta_list(args.fasta), args.model_preset == options.MULTIMER)
    fasta.check_lengths(targets, model=True)
    msas = user_msa.load_all([os.path.abspath(p) for p in args.msa or ()], targets)
    return [(os.path.join(os.path.abspath(args.output_dir), t.name),
             dict(checks, sequence_sha256=meta.sequence_sha256(t.sequence), **({'msa_sha256': m.sha256} if m else {})))
            for t, m in zip(targets, msas)]


def run_predict(args, gpu_opts=None):
    from fold_runtime.gpu_stage import predict, session
    gpu_opts = gpu_opts or options.gpu_options_from_args(args)
    loaded = [(tdir,) + predict.load_features(tdir, expected) for tdir, expected in gpu_targets(args)]
    for tdir, feats, _ in loaded:
        predict.check_preset(tdir, feats, gpu_opts.model_preset)
    started = session.Session(gpu_opts, max(m['sequence_length'] for _, _, m in loaded), gpu_opts.buckets or ())
    for tdir, feats, _ in loaded:
        seeds = ', %d predictions per model' % gpu_opts.num_seeds if started.models.pred_names else ''
        log.info('%s: predicting with %s (seed %d%s)', os.path.basename(tdir), ', '.join(started.models.names),
                 gpu_opts.random_seed, seeds)
        ranked, _, scores = predict.predict_target(tdir, feats, started)
        best = scores[ranked[0]]
        log.info('%s: ranked_0.pdb is %s (mean pLDDT %.2f%s)', os.path.basename(tdir), ranked[0], best['mean_plddt'],
                 ('' if best['ptm'] is None else ', pTM %.3f' % best['ptm']) +
                 ('' if best.get('iptm') is None else ', ipTM %.3f' % best['iptm']))
    return 0


def run_run(args):
    """Both stages; the CPU stage is skipped for targets whose features.pkl matches its meta."""
    if args.target_dir:
        raise KitError('alphafold-run needs --fasta and --output-dir', 'use alphafold-predict for --target-dir')
    cpu_opts, gpu_opts = options.cpu_options_from_args(args), options.gpu_options_from_args(args)   # all checked first
    args.db_preset, args.max_template_date = cpu_opts.db_preset, cpu_opts.max_template_date
    run_msa(args, cpu_opts, then_predict=True)
    return run_predict(args, gpu_opts)


def msa_main(argv=None):
    entry.main(lambda a: run_msa(options.cpu_stage_parser().parse_args(a)), argv, 'alphafold-msa')


def predict_main(argv=None):
    parser = options.gpu_stage_parser('alphafold-predict', PREDICT_HELP, stages=(options.GPU,))
    entry.main(lambda a: run_predict(parser.parse_args(a)), argv, 'alphafold-predict')


def run_main(argv=None):
    parser = options.gpu_stage_parser('alphafold-run', RUN_HELP)
    entry.main(lambda a: run_run(parser.parse_args(a)), argv, 'alphafold-run')
