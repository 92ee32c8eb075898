"""The batch GPU worker's relax pool: processes on the node's CPU cores that relax each finished
target's models and write its ranked files (gpu_stage.predict.finish) while the worker predicts the
next target. Size 0: no pool, the worker finishes each target itself (the GPU waits, as before).

Processes are spawned, not forked: a fork of a process that has started CUDA is unsafe. Their jax
(AlphaFold's relaxation checks violations with it) runs on the CPU, so they take no GPU memory;
OpenMM takes the GPU only where on_gpu() says so: the node's CPU cores relax by default.
"""
import concurrent.futures
import concurrent.futures.process
import multiprocessing
import os
import time


def on_gpu(asked, settings, gpus):
    """Whether the batch's relaxation runs on the GPU: as the user asked (--use-gpu-relax,
    --no-gpu-relax), else inline (no pool) when a GPU is visible, as alphafold-predict does, and in
    the pool only when the site chose it ([batch] relax_on_gpu) and a GPU is visible."""
    if asked is not None:
        return asked
    return bool(gpus) and (settings.relax_on_gpu or not settings.relax_workers)


class Pool(object):
    """size processes, started with the first target; size 0: none, each target finished inline."""

    def __init__(self, size, progress_interval):
        self.size, self.progress_interval, self.executor = size, progress_interval, None

    def submit(self, job, inline=False):
        """A future of finish_target(job); inline (or with no pool), one already done, in this process."""
        if inline or not self.size:
            future = concurrent.futures.Future()
            future.set_result(finish_target(job))
            return future
        if self.executor is None:
            self.executor = self._start()
        try:
            return self.executor.submit(finish_target, job)
        except concurrent.futures.process.BrokenProcessPool:   # a process died (killed, out of memory)
            self.executor.shutdown(wait=False)
            self.executor = self._start()   # the targets it held have failed; later ones get a new pool
            return self.executor.submit(finish_target, job)

    def backlogged(self, waiting):
        """Whether `waiting` targets fill the pool twice over: the worker then waits for one (the
        accelerator idles: relaxation is the bottleneck) instead of queueing more in memory."""
        return bool(self.size) and waiting >= 2 * self.size

    def _start(self):
        return concurrent.futures.ProcessPoolExecutor(self.size, mp_context=multiprocessing.get_context('spawn'),
                                                      initializer=_set_up, initargs=(self.progress_interval,))

    def shutdown(self):
        if self.executor is not None:
            self.executor.shutdown()


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
