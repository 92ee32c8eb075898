"""The local executor: CPU stages in a pool of processes sized to --cpus, and one GPU worker per
visible GPU (one CPU worker when there is none) that takes targets as their features appear.
A progress bar follows the targets' states on disk."""
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from fold_runtime import batch_state

CPU_DONE_FLAG = 'cpu-stage.done'


def visible_gpus():
    """GPU indices from CUDA_VISIBLE_DEVICES, else nvidia-smi; [] on a CPU-only machine."""
    env = os.environ.get('CUDA_VISIBLE_DEVICES')
    if env is not None:
        return [d for d in env.split(',') if d.strip() and d.strip() != 'NoDevFiles']
    try:
        res = subprocess.run(['nvidia-smi', '-L'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True)
    except FileNotFoundError:
        return []
    return [str(i) for i, line in enumerate(res.stdout.splitlines()) if line.startswith('GPU ')]


def _kit(*args):
    return [sys.executable, '-m', 'fold_runtime', 'batch'] + [str(a) for a in args]


def _start(cmd, log_path, env=None):
    with open(log_path, 'ab') as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def run(out, msa_names, n_targets, cpus, cpus_per_task, progress=True):
    """Run the batch to the end here; returns the number of targets not done."""
    flag = batch_state.batch_dir(out, CPU_DONE_FLAG)
    if os.path.exists(flag):
        os.unlink(flag)
    gpus = visible_gpus()
    workers = []
    for i, device in enumerate(gpus or [None]):
        env = dict(os.environ, **({'CUDA_VISIBLE_DEVICES': device} if device is not None else {}))
        workers.append(_start(_kit('gpu-worker', out, '--worker', i, '--cpu-flag', flag,
                                   '--parent-pid', os.getpid(), '--poll', 1),
                              batch_state.batch_dir(out, 'logs', 'gpu-worker-%d.log' % i), env))
    per_task = max(1, min(cpus_per_task, cpus))
    pool = ThreadPoolExecutor(max_workers=max(1, cpus // per_task))
    children = set(workers)

    def msa(name):
        proc = _start(_kit('msa-task', out, '--target', name, '--cpus', per_task),
                      batch_state.batch_dir(out, 'logs', 'msa-%s.log' % name))
        children.add(proc)
        return proc.wait()

    bar = _progress_bar(n_targets, progress)
    try:
        futures = [pool.submit(msa, name) for name in msa_names]
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
            print('GPU worker %d exited with status %s; its log: %s' % (
                i, w.returncode, batch_state.batch_dir(out, 'logs', 'gpu-worker-%d.log' % i)), file=sys.stderr)
    return sum(1 for s in batch_state.statuses(out) if s['stage'] != 'done')


def _progress_bar(total, enabled):
    from tqdm import tqdm
    return tqdm(total=total, desc='alphafold-batch', unit='target', disable=not enabled, file=sys.stderr)


def _update(bar, out):
    counts = {}
    for s in batch_state.statuses(out):
        counts[s['stage']] = counts.get(s['stage'], 0) + 1
    finished = counts.get('done', 0) + counts.get('failed', 0)
    postfix = {k: counts[k] for k in batch_state.STAGES if counts.get(k)}
    if finished != bar.n or postfix != getattr(bar, 'kit_postfix', None):   # redraw on change only
        bar.kit_postfix = postfix
        bar.set_postfix(postfix, refresh=False)
        bar.update(finished - bar.n)
        bar.refresh()
