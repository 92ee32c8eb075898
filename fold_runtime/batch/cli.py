"""alphafold-batch (python -m fold_runtime batch): submit, status, retry, report, cancel.

submit reads every target, deduplicates identical sequences, records the batch under
<out>/.batch/ and runs it with the local or the slurm executor. Everything a later command needs
is on disk, so status, retry and a second submit work from any shell, after any kill.
"""
import argparse
import dataclasses
import io
import json
import logging
import os
import sys
import time

from data_sync.registry import MMSEQS2
from fold_runtime import fasta, options, target_layout
from fold_runtime.batch import executors, inputs, job_commands, mmseqs_chunks, screen, state as batch_state
from fold_runtime.cpu_stage import mmseqs_gpu, user_msa
from kit_common import entry, site_config, text, typed
from kit_common.errors import EXIT_FAILED, EXIT_HELP, EXIT_INPUT, EXIT_MISMATCH, EXIT_MISSING, EXIT_OK, KitError

log = logging.getLogger(__name__)
CHAIN_CACHE = 'chain-cache'


def add_batch_options(p):
    options.add_stage_options(p.add_argument_group('batch'), options.BATCH)


def submit_parser():
    p = options.gpu_stage_parser('alphafold-batch submit', 'Run many targets: CPU stages in bulk, GPU stage in '
                                 'workers that load weights once. --fasta takes multi-record FASTA files and '
                                 'directories of FASTA files.')
    add_batch_options(p)
    return p


def settings_from(args, site):
    """The batch's executor settings: the site config's [slurm] and [batch], overridden by the
    options that exist for them (--cpu-partition, ...; no environment variables)."""
    slurm = {k: site_config.resolve(getattr(args, k, None), None, v, default=v)
             for k, v in typed.to_dict(site.slurm).items()}
    return options.batch_settings({'executor': args.executor, 'buckets': site.batch.edges,
                                   'relax_workers': site.batch.relax_workers, 'relax_on_gpu': site.batch.relax_on_gpu,
                                   'slurm': slurm})   # the options checked too


def stage_options_from(args):
    """Both stages' options with every path absolute, so jobs resolve them as submit did."""
    return (options.absolute_paths(options.cpu_options_from_args(args)),
            options.absolute_paths(options.gpu_options_from_args(args)))


def run_submit(argv):
    args = submit_parser().parse_args(argv)
    if not args.output_dir or not args.fasta:
        raise KitError('submit needs --fasta and --output-dir', 'see alphafold-batch submit --help')
    return submit(args, lambda cpu_opts, out: inputs.read(options.fasta_list(args.fasta), cpu_opts.multimer))


def submit(args, read_targets, write_inputs=None):
    """Check everything, record the batch and run it. read_targets(cpu_opts, out): its targets;
    write_inputs(targets): what they need on disk, written once the batch is recorded."""
    site = site_config.current()
    cpu_opts, gpu_opts = stage_options_from(args)   # every option checked before any work
    settings = settings_from(args, site)
    out = os.path.abspath(args.output_dir)
    executors.EXECUTORS[settings.executor].check(out)
    targets = read_targets(cpu_opts, out)
    fasta.check_lengths(targets, search=True, model=True)
    units = inputs.units(targets, user_msa.load_batch(cpu_opts.msa_paths, targets))
    if cpu_opts.mmseqs_gpu and settings.executor == 'local':   # its CPU stages run here (Slurm's: in their jobs)
        mmseqs_gpu.require_visible()
    require_gpu_inputs(gpu_opts)                          # weights: before hours of CPU stages
    if cpu_opts.multimer and not cpu_opts.feature_cache:
        # Chains shared by complexes are searched once: through a cache, the batch's own without a site one.
        cpu_opts = dataclasses.replace(cpu_opts, feature_cache=batch_state.batch_dir(out, CHAIN_CACHE))
    batch = batch_state.record(targets, units, cpu_opts, gpu_opts, settings)
    if cpu_opts.msa_mode == MMSEQS2 and not cpu_opts.multimer:   # many proteins per MMseqs2 run
        batch['mmseqs_chunks'] = mmseqs_chunks.plan(list(units), options.resolve_data_dir(cpu_opts.data_dir),
                                                    settings, cpu_opts.cpus)
    if os.path.exists(batch_state.batch_dir(out, 'batch.json')):
        _refuse_changed_options(out, batch, args.force)
        if not args.dry_run:
            _refuse_if_running(out)
    log.info('%d targets, %d unique inputs (sequence and --msa file; %d duplicates) -> %s',
             len(targets), len(units), len(targets) - len(units), out)
    if not args.dry_run:
        batch_state.save(out, batch)
        if write_inputs:
            write_inputs(targets)
    return launch(out, list(units), args, batch)


def screen_parser():
    p = options.gpu_stage_parser('alphafold-batch screen', 'An interaction screen: complexes made from lists of '
                                 'proteins (FASTA files or directories; each record one protein), run as a '
                                 'multimer batch in which each unique chain is searched once. summary.csv ranks '
                                 'the complexes by ipTM.', hidden=('--fasta',))
    g = p.add_argument_group('screen')
    options.add_stage_options(g, options.SCREEN)
    p.set_defaults(model_preset=options.MULTIMER)
    add_batch_options(p)
    return p


def run_screen(argv):
    args = screen_parser().parse_args(argv)
    fix = 'see alphafold-batch screen --help'
    if not args.output_dir or args.fasta:
        raise KitError('screen needs --output-dir, and takes its proteins from --baits and --candidates, not --fasta',
                       fix)
    if args.model_preset != options.MULTIMER:
        raise KitError('a screen predicts complexes: --model-preset %s is not multimer' % args.model_preset, fix)
    return submit(args, lambda cpu_opts, out: screen.targets(args.mode, args.baits, args.candidates, args.copies,
                                                             out), screen.write)


def require_gpu_inputs(gpu_opts):
    """The GPU stage's weights exist (where this node sees the data directory)."""
    from fold_runtime.gpu_stage import weights
    data_dir = options.resolve_data_dir(gpu_opts.data_dir)
    if not data_dir:
        raise KitError('no data directory given for the weights', 'pass --data-dir or set ALPHAFOLD_DATA_DIR',
                       EXIT_MISSING)
    weights.require(data_dir, weights.select_models(gpu_opts.model_preset, gpu_opts.models))


def _refuse_changed_options(out, batch, force):
    stored = batch_state.load(out)
    _refuse_other_msa_mode(out, stored, batch)
    changes = batch_state.option_changes(stored, batch)
    if changes and not force:
        raise KitError('the batch in %s was submitted with other options:\n    %s' % (out, '\n    '.join(changes)),
                       'submit with the same options to resume it, pass --force to replace them (finished '
                       'targets are kept), or use another --output-dir')
    if changes:
        log.info('--force: replacing the stored options: %s', '; '.join(changes))


def _refuse_other_msa_mode(out, stored, batch):
    """Even with --force: the batch's finished targets keep their features, and features made in one
    --msa-mode are never taken for the other's."""
    before = stored['cpu_options'].get('msa_mode', options.JACKHMMER)   # a batch from before the option
    now = batch['cpu_options']['msa_mode']
    if before != now:
        raise KitError('the batch in %s makes its features with --msa-mode %s, not %s' % (out, before, now),
                       'submit with --msa-mode %s to resume it, or use another --output-dir: features made in '
                       'one mode are never reused in the other' % before, EXIT_MISMATCH)


def launch(out, unit_names, args, batch=None):
    """Run or submit the units not yet finished among unit_names."""
    batch = batch or batch_state.load(out)
    status = {s['name']: s for s in batch_state.statuses(out, batch)}
    units = batch_state.units(batch)
    todo = [u for u in unit_names if any(status[t['name']]['stage'] != batch_state.TargetStage.DONE for t in units[u])]
    msa = [u for u in todo if batch_state.read_stage(out, u, batch_state.Stage.MSA).get('state') != batch_state.State.DONE
           or not os.path.exists(os.path.join(out, u, target_layout.FEATURES))]
    if not todo:
        log.info('every target is done already; nothing to run')
        return 0
    log.info('to run: %d CPU stage(s), %d prediction(s)', len(msa), len(todo))
    cpu_opts, _, settings = batch_state.stored_options(batch)
    if not args.dry_run:
        for u in todo:   # earlier failures and stale records make way for this run
            if u in msa:
                batch_state.clear_stage(out, u, batch_state.Stage.MSA)
            batch_state.clear_stage(out, u, batch_state.Stage.PREDICT)
        batch_state.clear_claims(out)
    executor = executors.EXECUTORS[settings.executor](out, settings, cpu_opts.mmseqs_gpu)
    unfinished = executor.submit(msa, len(todo), args.dry_run, not args.no_progress,
                                 lambda record: batch_state.add_submission(out, record))
    if args.dry_run:
        return 0
    if settings.executor == options.LOCAL:
        print_table(batch_state.statuses(out))
        return EXIT_FAILED if unfinished else EXIT_OK
    return watch(out, until_finished=True) if args.wait else 0


def _refuse_if_running(out):
    if not os.path.exists(batch_state.batch_dir(out, 'batch.json')):
        return
    active = _active(out)
    if active:
        raise KitError('the batch in %s still has active jobs: %s' % (out, text.listing(active)),
                       'wait for them (alphafold-batch status --watch) or stop them (alphafold-batch cancel)')


def _active(out):
    """Jobs or local runs of this batch still going."""
    return executors.active(batch_state.read_submissions(out))


def _refuse_never_starting(out):
    stuck = executors.never_starting(batch_state.read_submissions(out))
    if stuck:
        raise KitError('Slurm will never start %s as submitted: %s' % (
            'these jobs' if len(stuck) > 1 else 'this job', '; '.join('job %s pending (%s)' % j for j in stuck)),
            'the request exceeds what the partition offers (CPUs, memory, time limit, GPUs or nodes): lower '
            'cpus_per_task, cpu_mem, cpu_time, gpu_cpus_per_task, gpu_mem or gpu_time in the site config [slurm] '
            '(or pass --cpus-per-task, --cpu-partition, --gpu-partition), then alphafold-batch cancel %s and '
            'submit again' % out)


def run_retry(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog='alphafold-batch retry', description='Run the failed targets again, '
                                'with the batch\'s options (fix the cause first; alphafold-batch status shows it).')
    p.add_argument('output_dir')
    options.add_stage_options(p, options.RETRY)
    args = p.parse_args(argv)
    out = os.path.abspath(args.output_dir)
    batch_state.load(out)
    _refuse_if_running(out)
    failed = sorted({s['primary'] for s in batch_state.statuses(out) if s['stage'] == batch_state.TargetStage.FAILED})
    if not failed:
        log.info('no failed targets in %s', out)
        return 0
    log.info('retrying %d failed unit(s): %s', len(failed), text.listing(failed))
    return launch(out, failed, args)


def status_rows(out):
    rows = batch_state.statuses(out)
    jobs = executors.job_states([r[k] for r in rows for k in ('msa_job', 'predict_job')])
    for r in rows:
        r['job_states'] = {k: jobs.get(r[k]) for k in ('msa_job', 'predict_job') if r[k] in jobs}
    return rows


def print_table(rows, stream=sys.stdout):
    counts = {st: sum(1 for r in rows if r['stage'] == st) for st in batch_state.STAGES}
    print('  '.join('%s %d' % (k, v) for k, v in counts.items()), file=stream)
    fmt = '%-28s %-10s %-24s %-16s %-16s %9s %7s %-13s %6s %6s  %s'
    print(fmt % ('TARGET', 'STAGE', 'FEATURES', 'MSA JOB', 'PREDICT JOB', 'PREDICT_S', 'RELAX_S', 'BEST MODEL',
                 'pLDDT', 'pTM', 'ERROR'),
          file=stream)
    for r in rows:
        jobs = ['%s %s' % (r[k], r['job_states'].get(k, '')) if r.get('job_states') else (r[k] or '-')
                for k in ('msa_job', 'predict_job')]
        error = (r['error'] or '').splitlines()[0][:100] if r['error'] else ''
        best = r.get('best') or {}
        print(fmt % (r['name'], r['stage'], r['features'] or '-', jobs[0].strip() or '-', jobs[1].strip() or '-',
                     _score(r['predict_s'], '%.1f'), _score(r['relax_s'], '%.1f'), best.get('model', '-'), _score(best.get('mean_plddt'), '%.1f'), _score(best.get('ptm'), '%.3f'),
                     error), file=stream)


def _score(value, fmt):
    return '-' if value is None else fmt % value


def run_status(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog='alphafold-batch status', description='Targets by stage (pending, msa, '
                                'ready, predicting, done, failed), their jobs and errors.')
    p.add_argument('output_dir')
    p.add_argument('--json', action='store_true', help='one JSON object per target, as a list (times in ISO-8601, '
                                                       "the best model's scores under 'best')")
    p.add_argument('--watch', type=float, nargs='?', const=10.0, metavar='SECONDS',
                   help='refresh every SECONDS (default 10) until every target has finished')
    args = p.parse_args(argv)
    out = os.path.abspath(args.output_dir)
    batch_state.load(out)
    if args.watch:
        return watch(out, until_finished=True, interval=args.watch, clear=True)
    _refuse_never_starting(out)
    rows = status_rows(out)
    if args.json:
        json.dump([batch_state.with_iso_times(r) for r in rows], sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print_table(rows)
    return EXIT_FAILED if any(r['stage'] == batch_state.TargetStage.FAILED for r in rows) else EXIT_OK


def watch(out, until_finished, interval=5.0, clear=False):
    """Print the table until every target is done or failed and no job is left; 1 if any failed."""
    shown = None
    while True:
        _refuse_never_starting(out)
        rows = status_rows(out)
        finished = all(r['stage'] in (batch_state.TargetStage.DONE, batch_state.TargetStage.FAILED) for r in rows)
        table = io.StringIO()
        print_table(rows, table)
        if clear or table.getvalue() != shown:   # --wait logs a table only when something changed
            if clear:
                sys.stdout.write('\033[H\033[J')
            print(time.strftime('%H:%M:%S'))
            sys.stdout.write(table.getvalue())
            sys.stdout.flush()
            shown = table.getvalue()
        if finished or (until_finished and not _active(out)):   # no job left: nothing will change
            return EXIT_FAILED if any(r['stage'] != batch_state.TargetStage.DONE for r in rows) else EXIT_OK
        time.sleep(interval)


def run_cancel(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog='alphafold-batch cancel', description='Stop the batch\'s jobs; '
                                'finished outputs stay, and submit or retry resumes the rest.')
    p.add_argument('output_dir')
    out = os.path.abspath(p.parse_args(argv).output_dir)
    batch_state.load(out)
    active = _active(out)
    executors.cancel(batch_state.read_submissions(out))
    log.info('cancelled: %s', text.listing(active) or 'nothing was running')
    return 0


def run_report(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, prog='alphafold-batch report', description='Write <out>/report.png (timeline '
                                'of CPU and GPU stages, stage-time distributions) and <out>/report.json.')
    p.add_argument('output_dir')
    out = os.path.abspath(p.parse_args(argv).output_dir)
    batch_state.load(out)
    from fold_runtime.batch import report
    summary = report.write(out)
    print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, (dict, list))}, indent=2, sort_keys=True))
    return 0


def run_msa_task(argv):
    args = job_commands.parser(job_commands.MSA_TASK).parse_args(argv)
    from fold_runtime.batch import msa_task
    return msa_task.run(os.path.abspath(args.output_dir), args.target, args.cpus)


def run_gpu_worker(argv):
    args = job_commands.parser(job_commands.GPU_WORKER).parse_args(argv)
    from fold_runtime.batch import worker
    return worker.Worker(os.path.abspath(args.output_dir), args.worker, args.executor, args.cpu_stage,
                         args.parent_pid, args.poll).run()


COMMANDS = {'submit': run_submit, 'screen': run_screen, 'status': run_status, 'retry': run_retry, 'report': run_report,
            'cancel': run_cancel, job_commands.MSA_TASK: run_msa_task, job_commands.GPU_WORKER: run_gpu_worker}
USAGE = '''usage: alphafold-batch {submit,screen,status,retry,report,cancel} ...

  submit   --fasta FILES/DIRS --output-dir OUT [alphafold-run options] [--executor local|slurm] [--wait]
  screen   --mode pulldown|all-vs-all|homo-oligomer [--baits FASTA] --candidates FASTA [--copies N]
           --output-dir OUT [submit options]      complexes of an interaction screen
  status   OUT [--json] [--watch [SECONDS]]
  retry    OUT [--wait]           run the failed targets again
  report   OUT                    OUT/report.png and OUT/report.json
  cancel   OUT                    stop the batch's jobs
(msa-task and gpu-worker are what the job scripts run.)  --help after a command for its options.

%s''' % EXIT_HELP


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if argv and argv[0] not in ('-h', '--help') else sys.stdout)
        sys.exit(EXIT_OK if argv and argv[0] in ('-h', '--help') else EXIT_INPUT)
    entry.main(COMMANDS[argv[0]], argv[1:], 'alphafold-batch ' + argv[0])
