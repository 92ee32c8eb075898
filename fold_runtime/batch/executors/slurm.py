"""The slurm executor: a CPU-stage job array (throttled with %N) and K GPU worker jobs.

The GPU workers start once the first CPU task has ended (afterany on task 0) and then take
targets as their features appear, so one process per GPU loads the weights once and keeps its
compiled executables; an aftercorr array would pay start-up, weight loading and compilation per
target (benchmarks/batch_throughput.py measures both; docs/DESIGN.md §10).
"""
import logging
import os
import re
import shlex
import subprocess
import sys

from fold_runtime.batch import job_commands, state
from fold_runtime.batch.job_commands import GPU_WORKER, MSA_TASK
from fold_runtime.option_table import SLURM
from fold_runtime.batch.executors.base import Executor
from kit_common import files, tools
from kit_common.errors import EXIT_INPUT, KitError

log = logging.getLogger(__name__)
DEPENDENCY_PLACEHOLDER = '<cpu-array-job-id>'
DEFAULT_MAX_ARRAY_SIZE = 1001   # Slurm's MaxArraySize unless slurm.conf sets it
# Pending reasons that mean the job, as asked, will never start (the request exceeds what the
# partition or its nodes offer); waiting on them would wait forever.
NEVER_STARTS = ('PartitionConfig', 'PartitionTimeLimit', 'PartitionNodeLimit', 'ReqNodeNotAvail', 'BadConstraints')


def kit_command():
    """How job scripts call the kit: the installed wrapper when there is one, else this Python."""
    kit_bin = os.environ.get('ALPHAFOLD_KIT_BIN')
    if kit_bin:
        return shlex.quote(os.path.join(kit_bin, 'alphafold-batch'))
    return '%s -m fold_runtime batch' % shlex.quote(sys.executable)


GRES_GPU = '#SBATCH --gres=gpu:1'


def _header(slurm, job_name, partition, cpus, time_limit, mem, array, output):
    lines = ['#!/bin/bash', '#SBATCH --job-name=%s' % job_name, '#SBATCH --partition=%s' % partition,
             '#SBATCH --cpus-per-task=%s' % cpus, '#SBATCH --time=%s' % time_limit, '#SBATCH --mem=%s' % mem,
             '#SBATCH --array=%s' % array, '#SBATCH --output=%s' % output, '#SBATCH --requeue']
    for key in ('account', 'qos'):
        if getattr(slurm, key):
            lines.append('#SBATCH --%s=%s' % (key, getattr(slurm, key)))
    lines += ['#SBATCH %s' % extra.strip() for extra in slurm.extra_sbatch.split(';') if extra.strip()]
    return lines


def sbatch_output(out, pattern):
    """An #SBATCH --output value: Slurm expands '%' in it ('%%' is one '%') and ends an unquoted
    value at a space, so the batch directory is escaped and the whole value quoted."""
    return '"%s"' % os.path.join(state.batch_dir(out, 'logs').replace('%', '%%'), pattern)


def check_output_dir(out):
    """What sbatch_output() cannot quote: an #SBATCH line is one line, and within its double quotes Slurm
    gives '"' and '\\' their own meaning."""
    bad = sorted({c for c in out if c in '"\\' or not c.isprintable()})
    if bad:
        raise KitError('--output-dir %r holds %s, which a Slurm job script cannot carry in its #SBATCH --output line'
                       % (out, ', '.join(repr(c) for c in bad)), 'choose an --output-dir without them', EXIT_INPUT)


def max_array_size():
    """The tasks one job array may have: the cluster's MaxArraySize (its indexes run from 0 to
    MaxArraySize - 1), else Slurm's default where scontrol cannot tell (e.g. a --dry-run elsewhere)."""
    try:
        res = subprocess.run(['scontrol', 'show', 'config'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True)
    except OSError:
        return DEFAULT_MAX_ARRAY_SIZE
    found = re.search(r'^MaxArraySize\s*=\s*(\d+)', res.stdout, re.MULTILINE)
    return max(1, int(found.group(1))) if found else DEFAULT_MAX_ARRAY_SIZE


def msa_script(out, names, slurm, after=None, gpu=False):
    """One array task per unique sequence needing a CPU stage, at most max_concurrent_msa at once;
    after: the job (the previous piece of a split array) to wait for; gpu: --gpu's MMseqs2-GPU
    search, so each task gets a GPU in the GPU partition."""
    lines = _header(slurm, 'alphafold-msa', slurm.gpu_partition if gpu else slurm.cpu_partition, slurm.cpus_per_task,
                    slurm.cpu_time, slurm.cpu_mem, '0-%d%%%d' % (len(names) - 1, slurm.max_concurrent_msa),
                    sbatch_output(out, 'msa-%A_%a.log'))
    if gpu:
        lines.insert(3, GRES_GPU)
    if after:
        lines.append('#SBATCH --dependency=afterany:%s' % after)
    lines += ['set -euo pipefail', 'targets=(%s)' % ' '.join(shlex.quote(n) for n in names),
              'exec %s %s' % (kit_command(), ' '.join(job_commands.arguments(
                  MSA_TASK, shlex.quote(out), target='"${targets[$SLURM_ARRAY_TASK_ID]}"', cpus='"$SLURM_CPUS_PER_TASK"')))]
    return '\n'.join(lines) + '\n'


def predict_script(out, workers, slurm, cpu_jobs):
    """cpu_jobs: the CPU-stage arrays (the pieces of a split one, in order); the workers start after
    the first task and wait for features while any of them runs."""
    lines = _header(slurm, 'alphafold-predict', slurm.gpu_partition, slurm.gpu_cpus_per_task, slurm.gpu_time,
                    slurm.gpu_mem, '0-%d' % (workers - 1), sbatch_output(out, 'predict-%A_%a.log'))
    lines.insert(3, GRES_GPU)
    if cpu_jobs:
        lines.append('#SBATCH --dependency=afterany:%s_0' % cpu_jobs[0])
    lines += ['set -euo pipefail',
              'exec %s %s' % (kit_command(), ' '.join(job_commands.arguments(
                  GPU_WORKER, shlex.quote(out), worker='"$SLURM_ARRAY_TASK_ID"', executor=SLURM,
                  cpu_stage=','.join(cpu_jobs) or None)))]
    return '\n'.join(lines) + '\n'


def _write(directory, name, text):
    path = os.path.join(directory, name)
    files.write_text(path, text)
    return path


def sbatch(script):
    res = tools.run(['sbatch', '--parsable', script], 'sbatch of %s' % script,
                    'check the partitions, account and limits in the site config or the --cpu-partition, '
                    '--gpu-partition and --account options',
                    install_hint='run on a Slurm login node (or use --executor local)')
    return res.stdout.strip().split(';')[0]


class SlurmExecutor(Executor):
    name = SLURM

    @classmethod
    def check(cls, out):
        check_output_dir(out)

    def submit(self, msa_units, n_units, dry_run, progress, on_submitted):
        """Write the job scripts to <out>/.batch/scripts/ and submit them (or print them: a dry run
        writes nothing)."""
        out, slurm = self.out, self.settings.slurm
        workers = max(1, min(slurm.gpu_workers, n_units))
        cpu_jobs = self._submit_cpu_stage(msa_units, dry_run) if msa_units else []
        text = predict_script(out, workers, slurm, cpu_jobs)
        if dry_run:
            print(text)
            return 0
        gpu_job = sbatch(_write(state.batch_dir(out, 'scripts'), 'predict.sbatch', text))
        log.info('GPU stage: %d worker job(s) %s%s', workers, gpu_job,
                 ', after CPU task %s_0' % cpu_jobs[0] if cpu_jobs else '')
        on_submitted(state.Submission(self.name, tuple(msa_units), msa_job=','.join(cpu_jobs) or None,
                                      predict_job=gpu_job))
        return 0

    def _submit_cpu_stage(self, msa_units, dry_run):
        """The CPU-stage array; over the cluster's MaxArraySize, pieces that run one after another
        (afterany), each throttled to max_concurrent_msa, so the limit holds across them. The job ids."""
        slurm, size = self.settings.slurm, max_array_size()
        jobs = []
        for start in range(0, len(msa_units), size):
            text = msa_script(self.out, msa_units[start:start + size], slurm, jobs[-1] if jobs else None,
                              self.msa_gpu)
            if dry_run:
                print(text)
                jobs.append(DEPENDENCY_PLACEHOLDER if not jobs else '<cpu-array-%d-job-id>' % (len(jobs) + 1))
            else:
                name = 'msa.sbatch' if not jobs else 'msa-%d.sbatch' % (len(jobs) + 1)
                jobs.append(sbatch(_write(state.batch_dir(self.out, 'scripts'), name, text)))
        log.info('CPU stage: job array%s %s (%d tasks%s, at most %d at once)', 's' if len(jobs) > 1 else '',
                 ', '.join(jobs), len(msa_units), ' in pieces of at most %d, the cluster\'s MaxArraySize, one after '
                 'another' % size if len(jobs) > 1 else '', slurm.max_concurrent_msa)
        return jobs

    @classmethod
    def active(cls, submission):
        return active_jobs([submission.msa_job, submission.predict_job])

    @classmethod
    def cancel(cls, submission):
        ids = cls.active(submission)
        if ids:
            subprocess.run(['scancel'] + ids, check=False)

    @classmethod
    def never_starting(cls, submission):
        ids = ','.join(j for j in (submission.msa_job, submission.predict_job) if j)
        if not ids:
            return []
        try:
            res = subprocess.run(['squeue', '-h', '-t', 'PENDING', '-o', '%i|%r', '-j', ids], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, universal_newlines=True)
        except FileNotFoundError:
            return []
        pending = (line.split('|', 1) for line in res.stdout.splitlines() if '|' in line)
        return [(job, reason) for job, reason in pending if reason.split(',')[0].strip('()') in NEVER_STARTS]

    @classmethod
    def owns(cls, job_id):
        return not job_id.startswith('local:')

    @classmethod
    def job_states(cls, job_ids):
        return job_states(job_ids)

    @classmethod
    def cpu_stage_active(cls, token):
        return bool(token and active_jobs([token]))


def job_states(job_ids):
    """{job or array task id: state} from squeue (queued, running) and sacct (finished)."""
    ids = ','.join(j for j in job_ids if j)
    states = {}
    if not ids:
        return states
    for cmd in (['sacct', '-n', '-X', '-P', '-o', 'JobID,State', '-j', ids],
                ['squeue', '-h', '-r', '-o', '%i|%T', '-j', ids]):
        try:
            res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
        except FileNotFoundError:
            continue
        for line in res.stdout.splitlines() if res.returncode == 0 else ():
            job, _, job_state = line.partition('|')
            states[job.strip()] = job_state.split()[0] if job_state.split() else ''
    return states


def active_jobs(job_ids):
    """The jobs among these still queued or running."""
    ids = ','.join(j for j in job_ids if j)
    if not ids:
        return []
    try:
        res = subprocess.run(['squeue', '-h', '-o', '%F', '-j', ids], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True)
    except FileNotFoundError:
        return []
    return sorted(set(res.stdout.split()))   # a finished job id makes squeue exit 1: read what it printed

