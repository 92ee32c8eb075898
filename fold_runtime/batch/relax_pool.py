"""The batch GPU worker's relax pool: processes on the node's CPU cores that relax each finished
target's models and write its ranked files (gpu_stage.predict.finish) while the worker predicts the
next target. Size 0: no pool, the worker finishes each target itself (the GPU waits, as before).

Processes are spawned, not forked: a fork of a process that has started CUDA is unsafe. Their jax
(AlphaFold's relaxation checks violations with it) runs on the CPU, so they take no GPU memory;
OpenMM takes the GPU when the worker's options say so (use_gpu_relax).
"""
import concurrent.futures
import multiprocessing
import os
import time


def start(size, progress_interval):
    """The pool, or None for size 0 (finish inline)."""
    if not size:
        return None
    return concurrent.futures.ProcessPoolExecutor(size, mp_context=multiprocessing.get_context('spawn'),
                                                  initializer=_set_up, initargs=(progress_interval,))


def submit(pool, job):
    """A future of finish_target(job); with no pool, one already done (in this process)."""
    if pool is not None:
        return pool.submit(finish_target, job)
    future = concurrent.futures.Future()
    future.set_result(finish_target(job))
    return future


def _set_up(progress_interval):
    os.environ['JAX_PLATFORMS'] = 'cpu'   # before anything imports jax
    from fold_runtime import progress
    from fold_runtime.compat import fidelity
    from kit_common import entry
    entry.setup_logging()
    progress.configure(progress_interval)
    fidelity.apply_model()   # DeepMind's numerics in relaxation, as in the worker


def finish_target(job):
    """{'ranked', 'timings', 'scores'} or {'error'}, with the relax's start and end times: a result
    that crosses back from a pool process whatever went wrong."""
    from fold_runtime.batch import state
    from fold_runtime.gpu_stage import predict
    start = time.time()
    try:
        ranked, timings, scores = predict.finish(job)
        result = {'ranked': ranked, 'timings': timings, 'scores': scores, 'error': None}
    except Exception as exc:   # one bad target must not stop the worker's others
        result = {'error': state.describe(exc), 'timings': job.timings}
    return dict(result, relax_start=start, relax_end=time.time())
