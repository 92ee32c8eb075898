"""The local executor: CPU stages in a pool of processes sized to --cpus, and one GPU worker per
visible GPU (one CPU worker when there is none) that takes targets as their features appear.
A progress bar (plain lines when stderr is not a terminal) follows the targets' states on disk."""
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from fold_runtime.batch import job_commands, state
from fold_runtime.batch.job_commands import GPU_WORKER, MSA_TASK
from fold_runtime.option_table import LOCAL
from fold_runtime.batch.executors.base import Executor
from kit_common import text
from kit_common.gpus import visible_gpus

log = logging.getLogger(__name__)
CPU_DONE_FLAG = 'cpu-stage.done'


def process_start(pid):
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or None: with
    the pid and the host it names one process, so a recycled pid is never mistaken for it."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return int(f.read().rsplit(')', 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _kit(*args):
    return [sys.executable, '-m', 'fold_runtime', 'batch'] + [str(a) for a in args]


def _worker_log(out, i):
    return state.batch_dir(out, 'logs', '%s-%d.log' % (GPU_WORKER, i))


def _start(cmd, log_path, env=None):
    with open(log_path, 'ab') as log_file:
        return subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)


class LocalExecutor(Executor):
    name = LOCAL

    def submit(self, msa_units, n_units, dry_run, progress, on_submitted):
        if dry_run:
            log.info('--dry-run: the local executor writes no job scripts; would run %s',
                     '%d CPU stage(s): %s' % (len(msa_units), text.listing(msa_units)) if msa_units
                     else 'the GPU stage only')
            return 0
        on_submitted(state.Submission(self.name, tuple(msa_units), pid=os.getpid(), host=socket.gethostname(),
                                      pid_start=process_start(os.getpid())))
        return self._run(msa_units, n_units, progress)

    def _run(self, msa_units, n_units, progress):
        """Run the batch to the end here; returns the number of targets not done."""
        out, flag = self.out, state.batch_dir(self.out, CPU_DONE_FLAG)
        if os.path.exists(flag):
            os.unlink(flag)
        workers = [_start(_kit(*job_commands.arguments(GPU_WORKER, out, worker=i, executor=self.name, cpu_stage=flag,
                                                       parent_pid=os.getpid(), poll=1)),
                          _worker_log(out, i),
                          dict(os.environ, **({'CUDA_VISIBLE_DEVICES': device} if device is not None else {})))
                   for i, device in enumerate(visible_gpus() or [None])]
        cpus = self._cpus_per_task()
        pool = ThreadPoolExecutor(max_workers=max(1, self.settings_cpus // cpus))
        children = set(workers)

        def msa(name):
            proc = _start(_kit(*job_commands.arguments(MSA_TASK, out, target=name, cpus=cpus)),
                          state.batch_dir(out, 'logs', 'msa-%s.log' % name))
            children.add(proc)
            return proc.wait()

        bar = _progress_bar(len(state.load(out)['targets']), progress)
        try:
            futures = [pool.submit(msa, name) for name in msa_units]
            while not all(f.done() for f in futures):
                _update(bar, out)
                time.sleep(1)
            open(flag, 'w').close()
            while any(w.poll() is None for w in workers):
                _update(bar, out)
                time.sleep(1)
            _update(bar, out)
        except BaseException:
            for proc in children:   # Ctrl-C or SIGTERM: stop every stage, outputs stay consistent
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            raise
        finally:
            pool.shutdown(wait=False)
            bar.close()
        for i, w in enumerate(workers):
            if w.returncode not in (0, 1):   # 1: some target failed, which status reports
                log.info('GPU worker %d exited with status %s; its log: %s', i, w.returncode,
                         _worker_log(out, i))
        return sum(1 for s in state.statuses(out) if s['stage'] != state.TargetStage.DONE)

    @property
    def settings_cpus(self):
        """The CPUs the whole local batch may use: the CPU-stage options' --cpus."""
        return state.load(self.out)['cpu_options']['cpus']

    def _cpus_per_task(self):
        return max(1, min(self.settings.slurm.cpus_per_task, self.settings_cpus))

    @classmethod
    def _alive(cls, submission):
        pid = submission.pid
        if not pid or pid == os.getpid() or (submission.host or socket.gethostname()) != socket.gethostname():
            return False
        return process_start(pid) is not None and process_start(pid) == submission.pid_start

    @classmethod
    def active(cls, submission):
        return ['local run pid %d' % submission.pid] if cls._alive(submission) else []

    @classmethod
    def cancel(cls, submission):
        if cls._alive(submission):
            os.kill(submission.pid, signal.SIGTERM)

    @classmethod
    def owns(cls, job_id):
        return job_id.startswith('local:')

    @classmethod
    def cpu_stage_active(cls, token):
        return not os.path.exists(token)


def _progress_bar(total, enabled):
    """A tqdm bar on a terminal; elsewhere (a Slurm or nohup log) a plain line per change, since
    a bar's carriage-return redraws fill a log file."""
    if enabled and not sys.stderr.isatty():
        return _Lines(total)
    from tqdm import tqdm
    return tqdm(total=total, desc='alphafold-batch', unit='target', disable=not enabled, file=sys.stderr)


class _Lines(object):
    """What _update needs of a tqdm bar, as log lines."""

    def __init__(self, total):
        self.total, self.n, self.postfix = total, 0, {}

    def set_postfix(self, postfix, refresh=False):
        self.postfix = postfix

    def update(self, n):
        self.n += n

    def refresh(self):
        log.info('alphafold-batch: %d/%d targets finished (%s)', self.n, self.total,
                 ', '.join('%s %d' % kv for kv in self.postfix.items()))

    def close(self):
        pass


def _update(bar, out):
    counts = {}
    for s in state.statuses(out):
        counts[s['stage']] = counts.get(s['stage'], 0) + 1
    finished = counts.get(state.TargetStage.DONE, 0) + counts.get(state.TargetStage.FAILED, 0)
    postfix = {k: counts[k] for k in state.STAGES if counts.get(k)}
    if finished != bar.n or postfix != getattr(bar, 'kit_postfix', None):   # redraw on change only
        bar.kit_postfix = postfix
        bar.set_postfix(postfix, refresh=False)
        bar.update(finished - bar.n)
        bar.refresh()
