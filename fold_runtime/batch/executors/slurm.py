"""The slurm executor: a CPU-stage job array (throttled with %N) and K GPU worker jobs.

The GPU workers start once the first CPU task has ended (afterany on task 0) and then take
targets as their features appear, so one process per GPU loads the weights once and keeps its
compiled executables; an aftercorr array would pay start-up, weight loading and compilation per
target (benchmarks/batch_throughput.py measures both; README "Batch").
"""
import logging
import os
import shlex
import subprocess
import sys

from fold_runtime.batch import state
from fold_runtime.batch.executors.base import Executor
from kit_common import files, tools

log = logging.getLogger(__name__)
DEPENDENCY_PLACEHOLDER = '<cpu-array-job-id>'
# Pending reasons that mean the job, as asked, will never start (the request exceeds what the
# partition or its nodes offer); waiting on them would wait forever.
NEVER_STARTS = ('PartitionConfig', 'PartitionTimeLimit', 'PartitionNodeLimit', 'ReqNodeNotAvail', 'BadConstraints')


def kit_command():
    """How job scripts call the kit: the installed wrapper when there is one, else this Python."""
    kit_bin = os.environ.get('ALPHAFOLD_KIT_BIN')
    if kit_bin:
        return shlex.quote(os.path.join(kit_bin, 'alphafold-batch'))
    return '%s -m fold_runtime batch' % shlex.quote(sys.executable)


def _header(slurm, job_name, partition, cpus, time_limit, mem, array, log_path):
    lines = ['#!/bin/bash', '#SBATCH --job-name=%s' % job_name, '#SBATCH --partition=%s' % partition,
             '#SBATCH --cpus-per-task=%s' % cpus, '#SBATCH --time=%s' % time_limit, '#SBATCH --mem=%s' % mem,
             '#SBATCH --array=%s' % array, '#SBATCH --output=%s' % log_path, '#SBATCH --requeue']
    for key in ('account', 'qos'):
        if getattr(slurm, key):
            lines.append('#SBATCH --%s=%s' % (key, getattr(slurm, key)))
    lines += ['#SBATCH %s' % extra.strip() for extra in slurm.extra_sbatch.split(';') if extra.strip()]
    return lines


def msa_script(out, names, slurm):
    """One array task per unique sequence needing a CPU stage, at most max_concurrent_msa at once."""
    lines = _header(slurm, 'alphafold-msa', slurm.cpu_partition, slurm.cpus_per_task, slurm.cpu_time, slurm.cpu_mem,
                    '0-%d%%%d' % (len(names) - 1, slurm.max_concurrent_msa),
                    state.batch_dir(out, 'logs', 'msa-%A_%a.log'))
    lines += ['set -euo pipefail', 'targets=(%s)' % ' '.join(shlex.quote(n) for n in names),
              'exec %s msa-task %s --target "${targets[$SLURM_ARRAY_TASK_ID]}" --cpus "$SLURM_CPUS_PER_TASK"'
              % (kit_command(), shlex.quote(out))]
    return '\n'.join(lines) + '\n'


def predict_script(out, workers, slurm, cpu_job):
    lines = _header(slurm, 'alphafold-predict', slurm.gpu_partition, slurm.gpu_cpus_per_task, slurm.gpu_time,
                    slurm.gpu_mem, '0-%d' % (workers - 1), state.batch_dir(out, 'logs', 'predict-%A_%a.log'))
    lines.insert(3, '#SBATCH --gres=gpu:1')
    if cpu_job:
        lines.append('#SBATCH --dependency=afterany:%s_0' % cpu_job)
    lines += ['set -euo pipefail',
              'exec %s gpu-worker %s --worker "$SLURM_ARRAY_TASK_ID" --executor slurm%s'
              % (kit_command(), shlex.quote(out), ' --cpu-stage %s' % cpu_job if cpu_job else '')]
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
    name = 'slurm'

    def submit(self, msa_units, n_units, dry_run, progress, on_submitted):
        """Write the job scripts to <out>/.batch/scripts/ and submit them (or print them)."""
        out, slurm = self.out, self.settings.slurm
        workers = max(1, min(slurm.gpu_workers, n_units))
        scripts = state.batch_dir(out, 'scripts')
        cpu_job = None
        if msa_units:
            text = msa_script(out, msa_units, slurm)
            if dry_run:   # prints the scripts and writes nothing
                print(text)
                cpu_job = DEPENDENCY_PLACEHOLDER
            else:
                cpu_job = sbatch(_write(scripts, 'msa.sbatch', text))
                log.info('CPU stage: job array %s (%d tasks, at most %d at once)', cpu_job, len(msa_units),
                         slurm.max_concurrent_msa)
        text = predict_script(out, workers, slurm, cpu_job)
        if dry_run:
            print(text)
            return 0
        gpu_job = sbatch(_write(scripts, 'predict.sbatch', text))
        log.info('GPU stage: %d worker job(s) %s%s', workers, gpu_job,
                 ', after CPU task %s_0' % cpu_job if cpu_job else '')
        on_submitted({'executor': self.name, 'msa_job': cpu_job, 'predict_job': gpu_job, 'msa_targets': msa_units})
        return 0

    @classmethod
    def active(cls, submission):
        return active_jobs([submission.get('msa_job'), submission.get('predict_job')])

    @classmethod
    def cancel(cls, submission):
        ids = cls.active(submission)
        if ids:
            subprocess.run(['scancel'] + ids, check=False)

    @classmethod
    def never_starting(cls, submission):
        ids = ','.join(j for j in (submission.get('msa_job'), submission.get('predict_job')) if j)
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

