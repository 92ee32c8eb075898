"""The slurm executor: a CPU-stage job array (throttled with %N) and K GPU worker jobs.

The GPU workers start once the first CPU task has ended (afterany on task 0) and then take
targets as their features appear, so one process per GPU loads the weights once and keeps its
compiled executables; an aftercorr array would pay start-up, weight loading and compilation per
target (benchmarks/batch_throughput.py measures both; README "Batch").
"""
import os
import shlex
import subprocess
import sys

from fold_runtime import atomic, batch_state
from fold_runtime.errors import EXIT_MISSING, EXIT_TOOL, KitError

DEPENDENCY_PLACEHOLDER = '<cpu-array-job-id>'


def kit_command():
    """How job scripts call the kit: the installed wrapper when there is one, else this Python."""
    kit_bin = os.environ.get('ALPHAFOLD_KIT_BIN')
    if kit_bin:
        return shlex.quote(os.path.join(kit_bin, 'alphafold-batch'))
    return '%s -m fold_runtime batch' % shlex.quote(sys.executable)


def _header(settings, job_name, partition, cpus, time_limit, mem, array, log):
    lines = ['#!/bin/bash', '#SBATCH --job-name=%s' % job_name, '#SBATCH --partition=%s' % partition,
             '#SBATCH --cpus-per-task=%s' % cpus, '#SBATCH --time=%s' % time_limit, '#SBATCH --mem=%s' % mem,
             '#SBATCH --array=%s' % array, '#SBATCH --output=%s' % log, '#SBATCH --requeue']
    for key in ('account', 'qos'):
        if settings.get(key):
            lines.append('#SBATCH --%s=%s' % (key, settings[key]))
    lines += ['#SBATCH %s' % extra.strip() for extra in settings.get('extra_sbatch', '').split(';') if extra.strip()]
    return lines


def msa_script(out, names, settings):
    """One array task per unique sequence needing a CPU stage, at most max_concurrent_msa at once."""
    lines = _header(settings, 'alphafold-msa', settings['cpu_partition'], settings['cpus_per_task'],
                    settings['cpu_time'], settings['cpu_mem'],
                    '0-%d%%%s' % (len(names) - 1, settings['max_concurrent_msa']),
                    batch_state.batch_dir(out, 'logs', 'msa-%A_%a.log'))
    lines += ['set -euo pipefail', 'targets=(%s)' % ' '.join(shlex.quote(n) for n in names),
              'exec %s msa-task %s --target "${targets[$SLURM_ARRAY_TASK_ID]}" --cpus "$SLURM_CPUS_PER_TASK"'
              % (kit_command(), shlex.quote(out))]
    return '\n'.join(lines) + '\n'


def predict_script(out, workers, settings, cpu_job):
    lines = _header(settings, 'alphafold-predict', settings['gpu_partition'], settings['gpu_cpus_per_task'],
                    settings['gpu_time'], settings['gpu_mem'], '0-%d' % (workers - 1),
                    batch_state.batch_dir(out, 'logs', 'predict-%A_%a.log'))
    lines.insert(3, '#SBATCH --gres=gpu:1')
    if cpu_job:
        lines.append('#SBATCH --dependency=afterany:%s_0' % cpu_job)
    lines += ['set -euo pipefail',
              'exec %s gpu-worker %s --worker "$SLURM_ARRAY_TASK_ID"%s'
              % (kit_command(), shlex.quote(out), ' --cpu-job %s' % cpu_job if cpu_job else '')]
    return '\n'.join(lines) + '\n'


def submit(out, msa_names, n_units, settings, dry_run=False, log=print):
    """Write the job scripts to <out>/.batch/scripts/ and submit them (or print them)."""
    workers = max(1, min(int(settings['gpu_workers']), n_units))
    scripts = batch_state.batch_dir(out, 'scripts')
    cpu_job = None
    if msa_names:
        text = msa_script(out, msa_names, settings)
        atomic.write_text(os.path.join(scripts, 'msa.sbatch'), text)
        cpu_job = DEPENDENCY_PLACEHOLDER if dry_run else sbatch(os.path.join(scripts, 'msa.sbatch'))
        log(text if dry_run else 'CPU stage: job array %s (%d tasks, at most %s at once)'
            % (cpu_job, len(msa_names), settings['max_concurrent_msa']))
    text = predict_script(out, workers, settings, cpu_job)
    atomic.write_text(os.path.join(scripts, 'predict.sbatch'), text)
    if dry_run:
        log(text)
        return None
    gpu_job = sbatch(os.path.join(scripts, 'predict.sbatch'))
    log('GPU stage: %d worker job(s) %s%s' % (workers, gpu_job, ', after CPU task %s_0' % cpu_job if cpu_job else ''))
    return {'executor': 'slurm', 'msa_job': cpu_job, 'predict_job': gpu_job, 'msa_targets': msa_names}


def sbatch(script):
    try:
        res = subprocess.run(['sbatch', '--parsable', script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
    except FileNotFoundError:
        raise KitError('sbatch not found on PATH', 'run on a Slurm login node (or use --executor local)', EXIT_MISSING)
    if res.returncode != 0:
        raise KitError('sbatch refused %s: %s' % (script, res.stderr.strip()),
                       'check the partitions, account and limits in the site config or the --cpu-partition, '
                       '--gpu-partition and --account options', EXIT_TOOL)
    return res.stdout.strip().split(';')[0]


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
            job, _, state = line.partition('|')
            states[job.strip()] = state.split()[0] if state.split() else ''
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


def cancel(job_ids):
    ids = [j for j in job_ids if j]
    if ids:
        subprocess.run(['scancel'] + ids, check=False)
