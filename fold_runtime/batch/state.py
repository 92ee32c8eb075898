"""A batch's state on disk, under <out>/.batch/: what was asked (batch.json), each target's
stage records (state/<name>.msa.json, .predict.json, written atomically by the process doing the
stage), GPU workers' claims, submitted jobs, job scripts, logs and worker timings.

Nothing lives only in memory, so status, resume and retry work after any kill or requeue.
"""
import dataclasses
import datetime
import errno
import json
import os
import socket
import time
from typing import Optional, Tuple

from fold_runtime import fasta, options
from kit_common import files, typed
from kit_common.errors import EXIT_INPUT, KitError


class Stage:
    """The two stage records a target has (state/<name>.<stage>.json)."""
    MSA = 'msa'
    PREDICT = 'predict'


class State:
    """A stage record's state, as stored. RELAXING: predicted, its relaxation and ranked files to come."""
    RUNNING = 'running'
    RELAXING = 'relaxing'
    DONE = 'done'
    FAILED = 'failed'


class TargetStage:
    """Where a target stands, as status and report.json show it (derived from its stage records)."""
    PENDING = 'pending'
    MSA = 'msa'
    READY = 'ready'
    PREDICTING = 'predicting'
    RELAXING = State.RELAXING
    DONE = State.DONE
    FAILED = State.FAILED


STAGES = (TargetStage.PENDING, TargetStage.MSA, TargetStage.READY, TargetStage.PREDICTING, TargetStage.RELAXING,
          TargetStage.DONE, TargetStage.FAILED)
# 2: typed options as JSON (cpu_options, gpu_options, settings); 1 stored argv ('run_args').
FORMAT = 2


def batch_dir(out, *parts):
    return os.path.join(out, '.batch', *parts)


def record(targets, units, cpu_opts, gpu_opts, settings):
    """What batch.json holds: the targets (with their unit's primary name), both stages' options
    and the executor settings, as JSON that every job reads back."""
    primary = {t.name: p for p, unit in units.items() for t in unit}
    return json.loads(json.dumps({'format': FORMAT,
            'targets': [_target_record(t, primary[t.name]) for t in targets],
            'cpu_options': typed.to_dict(cpu_opts), 'gpu_options': typed.to_dict(gpu_opts),
            'settings': typed.to_dict(settings)}))   # as stored: tuples become lists


def _target_record(t, primary):
    entry = {'name': t.name, 'description': t.description, 'sequence': t.sequence, 'fasta': t.fasta_path,
             'primary': primary}
    if t.chains:
        entry['chains'] = [list(c) for c in t.chains]
    return entry


def target_of(entry):
    """The fasta.Target a batch.json entry records (a complex with its chains)."""
    return fasta.Target(entry['name'], entry['description'], entry['sequence'], entry['fasta'],
                        tuple(fasta.Chain(*c) for c in entry.get('chains', ())))


def num_residues(entry):
    return target_of(entry).num_residues


OPTION_PARTS = ('cpu_options', 'gpu_options', 'settings')


def option_changes(old, new):
    """'part.key: old -> new' for every option that differs between two batch records. An option
    that a batch written by an earlier kit version lacks counts as its default, so adding an
    option does not make every running batch refuse a resubmit."""
    defaults = json.loads(json.dumps({'cpu_options': typed.to_dict(options.CpuStageOptions()),
                                      'gpu_options': typed.to_dict(options.GpuStageOptions()),
                                      'settings': typed.to_dict(options.BatchSettings())}))
    changes = []
    for part in OPTION_PARTS:
        before, after = dict(defaults.get(part, {}), **(old.get(part) or {})), new[part]
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                changes.append('%s.%s: %r -> %r' % (part, key, before.get(key), after.get(key)))
    return changes


def save(out, batch):
    for sub in ('state', 'claims', 'scripts', 'logs', 'timings'):
        files.make_dirs(batch_dir(out, sub))
    files.write_json(batch_dir(out, 'batch.json'), batch)


def load(out):
    try:
        with open(batch_dir(out, 'batch.json')) as f:
            batch = json.load(f)
    except FileNotFoundError:
        raise KitError('%s holds no batch (no .batch/batch.json)' % out,
                       'start one with: alphafold-batch submit --fasta ... --output-dir %s' % out, EXIT_INPUT)
    except ValueError as exc:
        raise KitError('%s is not valid JSON: %s' % (batch_dir(out, 'batch.json'), exc),
                       'start the batch again in a new --output-dir', EXIT_INPUT)
    again = 'submit it again into a new --output-dir (finished targets can be copied over: their features are reused)'
    if isinstance(batch, dict) and batch.get('format') != FORMAT:
        raise KitError('the batch in %s was written by an older version of the kit (it stored command lines, '
                       'this version stores typed options)' % out,
                       'finish it with the kit version that started it, or ' + again, EXIT_INPUT)
    if not (isinstance(batch, dict) and isinstance(batch.get('targets'), list)
            and all(isinstance(batch.get(part), dict) for part in OPTION_PARTS)):
        raise KitError('%s is not a batch record the kit wrote (valid JSON of another shape)'
                       % batch_dir(out, 'batch.json'), again, EXIT_INPUT)
    return batch


def stored_options(batch):
    """(CpuStageOptions, GpuStageOptions, BatchSettings) of a loaded batch.json."""
    return (options.cpu_options(batch['cpu_options']), options.gpu_options(batch['gpu_options']),
            options.batch_settings(batch['settings']))


def units(batch):
    """{primary: [target entries, primary first]} from batch.json. A unit is the targets of one distinct
    sequence (and --msa file): one CPU stage and one prediction, copied to its duplicates. Its first
    target, the primary, names it and holds its stage records ('primary' in batch.json and status)."""
    found = {}
    for t in batch['targets']:
        found.setdefault(t['primary'], []).append(t)
    return found


def job_id():
    """This process's Slurm job (array jobs as JOB_TASK), or local:<pid>."""
    env = os.environ
    if env.get('SLURM_ARRAY_JOB_ID'):
        return '%s_%s' % (env['SLURM_ARRAY_JOB_ID'], env.get('SLURM_ARRAY_TASK_ID', ''))
    return env.get('SLURM_JOB_ID') or 'local:%d' % os.getpid()


def write_stage(out, name, stage, state, **fields):
    """Record a target's stage ('msa' or 'predict') as running, done or failed; a prediction in
    between as relaxing (predicted, its relaxation and ranked files to come: not done yet)."""
    path = batch_dir(out, 'state', '%s.%s.json' % (name, stage))
    record = read_stage(out, name, stage) if state != State.RUNNING else {}
    record.update(fields, state=state, host=socket.gethostname(), job=job_id())
    record[{State.RUNNING: 'started', State.RELAXING: 'predicted'}.get(state, 'finished')] = time.time()
    files.write_json(path, record)
    return record


def terminated(status):
    return ('terminated (exit %s): time limit, cancel or preemption; alphafold-batch retry resumes it'
            % status)


def describe(exc):
    """An exception as a stage record's error: the KitError's message, a termination, or the type."""
    if isinstance(exc, KitError):
        return str(exc)
    if isinstance(exc, SystemExit):
        return terminated(exc.code)
    return '%s: %s' % (type(exc).__name__, exc)


def read_stage(out, name, stage):
    """A target's stage record; {} before the stage starts. Records are written atomically, so one
    that cannot be read was damaged since: the stage counts as failed (retry runs it again)."""
    path = batch_dir(out, 'state', '%s.%s.json' % (name, stage))
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        record = exc
    if isinstance(record, dict):
        return record
    return {'state': State.FAILED, 'error': 'its stage record %s is unreadable (%s); alphafold-batch retry runs the stage '
                                        'again' % (path, record if isinstance(record, Exception) else 'not a record')}


def clear_stage(out, name, stage):
    try:
        os.unlink(batch_dir(out, 'state', '%s.%s.json' % (name, stage)))
    except FileNotFoundError:
        pass


def target_status(out, entry):
    """One target's stage, features source, error and stage times."""
    name, primary = entry['name'], entry['primary']
    msa = read_stage(out, primary, Stage.MSA)
    own = read_stage(out, name, Stage.PREDICT)
    pred = own if name == primary else read_stage(out, primary, Stage.PREDICT)
    if own.get('state') == State.DONE or pred.get('state') == State.FAILED:
        stage = TargetStage.DONE if own.get('state') == State.DONE else TargetStage.FAILED
    elif pred.get('state') == State.RELAXING:
        stage = TargetStage.RELAXING
    elif pred.get('state') in (State.RUNNING, State.DONE):
        stage = TargetStage.PREDICTING
    elif msa.get('state') == State.FAILED:
        stage = TargetStage.FAILED
    else:
        stage = {State.DONE: TargetStage.READY, State.RUNNING: TargetStage.MSA}.get(msa.get('state'),
                                                                                   TargetStage.PENDING)
    source = msa.get('features_source')
    if name != primary:
        source = 'duplicate of %s' % primary
    best = pred.get('best') if stage == TargetStage.DONE else None
    return {'name': name, 'primary': primary, 'stage': stage, 'features': source, 'best': best,
            'error': pred.get('error') or msa.get('error') if stage == TargetStage.FAILED else None,
            'msa_job': msa.get('job'), 'predict_job': pred.get('job'),
            'msa_start': msa.get('started'), 'msa_end': msa.get('finished') if msa.get('state') == State.DONE else None,
            'predict_start': pred.get('started'),
            'predict_end': pred.get('finished') if pred.get('state') == State.DONE else None,
            'predicted': pred.get('predicted'), 'relax_start': pred.get('relax_start'),
            'relax_end': pred.get('relax_end'), 'predict_s': pred.get('predict_s'), 'relax_s': pred.get('relax_s'),
            'length': num_residues(entry)}


def best_scores(scores):
    """The best model's name and scores, as the predict record and status carry them."""
    return {k: scores[k] for k in ('model', 'mean_plddt', 'ptm', 'iptm', 'ranking_confidence')}


TIME_FIELDS = ('msa_start', 'msa_end', 'predict_start', 'predicted', 'predict_end', 'relax_start', 'relax_end')


def iso(seconds):
    """An epoch time as ISO-8601 in UTC with milliseconds (fixed width: strings sort as times)."""
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec='milliseconds')


def with_iso_times(row):
    """A status row as status --json and report.json show it: times in ISO-8601."""
    return dict(row, **{k: iso(row[k]) for k in TIME_FIELDS})


def statuses(out, batch=None):
    batch = batch or load(out)
    return [target_status(out, t) for t in batch['targets']]


def claim(out, name, owner):
    """Take a unit for one GPU worker: exclusive create, so two workers never predict it twice.
    A requeued job keeps its job id and so takes back what it held."""
    path = batch_dir(out, 'claims', name)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
        with open(path) as f:
            return f.read().strip() == owner
    with os.fdopen(fd, 'w') as f:
        f.write(owner + '\n')
    return True


def clear_claims(out):
    """A new submission voids the claims of workers that are gone."""
    directory = batch_dir(out, 'claims')
    for name in os.listdir(directory) if os.path.isdir(directory) else ():
        os.unlink(os.path.join(directory, name))


@dataclasses.dataclass
class Submission:
    """One entry of jobs.json: the work one submit or retry started, as active() and cancel() read it
    back. Slurm: its CPU-stage array job(s) (comma-separated) and GPU worker job; local: the process."""
    executor: str
    msa_targets: Tuple[str, ...] = ()
    submitted: Optional[float] = None
    msa_job: Optional[str] = None
    predict_job: Optional[str] = None
    pid: Optional[int] = None
    host: Optional[str] = None
    pid_start: Optional[int] = None

    def check(self):
        if self.executor not in options.EXECUTORS:
            return 'executor %r is none of %s' % (self.executor, ', '.join(options.EXECUTORS))
        return None


def add_submission(out, submission):
    jobs = read_submissions(out)
    jobs.append(dataclasses.replace(submission, submitted=time.time()))
    files.write_json(batch_dir(out, 'jobs.json'), [typed.to_dict(j) for j in jobs])


def read_submissions(out):
    """The batch's submissions (jobs.json); a KitError when it is damaged: without it nobody can tell
    which of the batch's jobs still run."""
    path = batch_dir(out, 'jobs.json')
    try:
        with open(path) as f:
            jobs = json.load(f)
        if not (isinstance(jobs, list) and all(isinstance(j, dict) for j in jobs)):
            raise ValueError('valid JSON of another shape')
        return [typed.build(Submission, j, 'entry %d' % i, '') for i, j in enumerate(jobs, 1)]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KitError) as exc:
        raise KitError('%s, the list of the batch\'s submitted jobs, is damaged (%s)'
                       % (path, exc.problem if isinstance(exc, KitError) else exc),
                       'stop any of the batch\'s jobs still running by hand (squeue and scancel; a local run: its '
                       'process), then move the file aside: alphafold-batch retry or submit resumes the batch',
                       EXIT_INPUT)
