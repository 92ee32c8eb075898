"""The batch GPU worker: loads each model's weights once, then predicts target after target as
their features become ready, shortest first, each padded up to its length bucket so compiled
executables are reused (and shared across jobs through the persistent compilation cache).

Each target's relaxation and ranked files go to the relax pool (relax_pool.py, the site's [batch]
relax_workers) while the worker predicts the next; the target is done when they are written.

GPU-busy fraction = time in prediction over the worker's wall time; loading weights, compiling,
preparing features, relaxing (in the pool, or inline with relax_workers = 0) and waiting for the
CPU stage count as idle.
"""
import concurrent.futures
import logging
import multiprocessing
import os
import shutil
import signal
import time

from fold_runtime import meta
from fold_runtime.batch import relax_pool, state as batch_state
from fold_runtime.batch.state import Stage, State
from fold_runtime.batch.executors import EXECUTORS
from fold_runtime.gpu_stage import padding, predict
from kit_common import files, locks

log = logging.getLogger(__name__)


class Worker(object):
    def __init__(self, out, worker_id, executor, cpu_stage=None, parent_pid=None, poll=5.0):
        """The executor says whether the CPU stage named by cpu_stage (its token: a Slurm job id,
        a flag file) may still produce features; a local worker stops when its parent is gone."""
        self.out, self.worker_id, self.poll = out, worker_id, poll
        self.executor, self.cpu_stage, self.parent_pid = EXECUTORS[executor], cpu_stage, parent_pid
        self.batch = batch_state.load(out)
        self.units = batch_state.units(self.batch)
        self.owner = batch_state.job_id()
        self.started = time.time()
        self.held_elsewhere = set()   # units another worker claimed
        self.current = None
        self.relaxing = {}   # unit name -> (unit, prediction stats, future) while the pool finishes it
        # An exception raised from a signal handler can land in a jax callback, which swallows it:
        # record the stop and leave at once instead (outputs are written atomically).
        signal.signal(signal.SIGTERM, self._terminated)
        self.record = {'worker': worker_id, 'job': self.owner, 'started': self.started, 'targets': {}}

    def run(self):
        from fold_runtime.gpu_stage.session import Session
        _, gpu_opts, settings = batch_state.stored_options(self.batch)
        self.pool = relax_pool.Pool(settings.relax_workers, gpu_opts.progress_interval)
        edges = next(e for e in (gpu_opts.buckets, settings.buckets, padding.DEFAULT_EDGES) if e is not None)
        longest = max(batch_state.num_residues(unit[0]) for unit in self.units.values())
        try:
            self.session = Session(gpu_opts, longest, edges)
        except Exception as exc:
            self._failed_to_start(exc)
            raise
        self.session.use_gpu_relax = relax_pool.on_gpu(gpu_opts.use_gpu_relax, settings, self.session.gpus)
        # The report says "accelerator busy" only of workers that had one.
        self.record.update(load_s=round(time.time() - self.started, 3), buckets=list(edges),
                           models=self.session.models.names, accelerator='gpu' if self.session.gpus else None)
        while not self._orphaned():
            self._collect()
            if self.pool.backlogged(len(self.relaxing)):   # each holds a target's models and features
                self._collect(wait=True)
                continue
            active = self._cpu_stage_active()
            todo = self._todo()
            ready = [u for u in todo if batch_state.read_stage(self.out, u[0]['name'], Stage.MSA).get('state') == State.DONE]
            if not ready:
                if not todo and self.relaxing:
                    self._collect(wait=True)
                    continue
                if not todo or not active:
                    break
                time.sleep(self.poll)
                continue
            unit = min(ready, key=lambda u: batch_state.num_residues(u[0]))
            if batch_state.claim(self.out, unit[0]['name'], self.owner):
                self._predict(unit)
            else:
                self.held_elsewhere.add(unit[0]['name'])
        while self.relaxing:
            self._collect(wait=True)
        self.pool.shutdown()
        self._write_record()
        failed = [n for n, t in self.record['targets'].items() if t.get('error')]
        log.info('worker %s: %d targets, %d failed, GPU-busy %.0f%%', self.worker_id, len(self.record['targets']),
                 len(failed), 100 * self.record['gpu_busy_fraction'])
        return 1 if failed else 0

    def _todo(self):
        """Units this worker may still predict: not finished, not failed (a target interrupted by
        preemption is taken again, e.g. by the requeued job), not held by another worker."""
        todo = []
        for name, unit in self.units.items():
            record = batch_state.read_stage(self.out, name, Stage.PREDICT)
            pred = record.get('state')
            if pred == State.DONE:
                self._copy_duplicates(unit)
            elif (pred != State.FAILED or record.get('interrupted')) and name not in self.held_elsewhere and \
                    name not in self.relaxing and \
                    batch_state.read_stage(self.out, name, Stage.MSA).get('state') != State.FAILED:
                todo.append(unit)
        return todo

    def _failed_to_start(self, exc):
        """Every target this worker would have predicted shows why (alphafold-batch status); the
        record stays retakable, so another worker that starts fine still predicts them."""
        error = 'GPU worker %s (job %s) could not start: %s' % (self.worker_id, self.owner, batch_state.describe(exc))
        log.info('%s', error)
        for unit in self._todo():
            batch_state.write_stage(self.out, unit[0]['name'], Stage.PREDICT, State.FAILED, error=error, interrupted=True)

    def _terminated(self, signum, frame):
        for name in [n for n in [self.current] + list(self.relaxing) if n]:
            batch_state.write_stage(self.out, name, Stage.PREDICT, State.FAILED, interrupted=True,
                                    error=batch_state.terminated(128 + signum))
        for child in multiprocessing.active_children():   # the relax pool's processes
            child.kill()
        self._write_record()
        os._exit(128 + signum)

    def _orphaned(self):
        if self.parent_pid and os.getppid() != self.parent_pid:
            log.info('worker %s: the local batch that started it is gone; stopping', self.worker_id)
            return True
        return False

    def _cpu_stage_active(self):
        return bool(self.cpu_stage) and self.executor.cpu_stage_active(self.cpu_stage)

    def _predict(self, unit):
        """Predicts a unit, then hands it to the relax pool (or finishes it inline)."""
        entry = unit[0]
        name, tdir = entry['name'], os.path.join(self.out, entry['name'])
        batch_state.write_stage(self.out, name, Stage.PREDICT, State.RUNNING, worker=self.worker_id)
        self.current = name
        t0 = time.time()
        try:
            feats, _ = predict.load_features(tdir, {'sequence_sha256': meta.sequence_sha256(entry['sequence'])})
            job = predict.predict_models(tdir, feats, self.session)
            error, timings = None, job.timings
        except Exception as exc:   # one bad target must not stop the worker's others
            error, timings = batch_state.describe(exc), {}
        self.current = None
        stats = {'length': batch_state.num_residues(entry), 'padded_length': timings.get('padded_length'),
                 'compiles': int(_sum(timings, 'compiles_')), 'compile_s': round(_sum(timings, 'compile_'), 3),
                 'predict_s': round(_sum(timings, 'predict_'), 3), 'relax_s': 0.0,
                 'wall_s': round(time.time() - t0, 3), 'start': t0, 'error': error}
        stats['gpu_busy_fraction'] = round(stats['predict_s'] / max(stats['wall_s'], 1e-9), 4)
        if error:
            self._finished(unit, stats)
            return
        batch_state.write_stage(self.out, name, Stage.PREDICT, State.RELAXING, **_times(stats))
        # Nothing to relax: the ranked files are quicker to write here than a pool process to start.
        self.relaxing[name] = (unit, stats, self.pool.submit(job, inline=job.models_to_relax == 'none'))
        self._collect()

    def _collect(self, wait=False):
        """Records the units the relax pool has finished (with wait: waits for one at least)."""
        futures = [f for _, _, f in self.relaxing.values()]
        if wait and futures:
            concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
        for name, (unit, stats, future) in list(self.relaxing.items()):
            if future.done():
                del self.relaxing[name]
                self._relaxed(unit, stats, future)

    def _relaxed(self, unit, stats, future):
        try:
            result = future.result()
        except Exception as exc:   # the pool process died (killed, out of memory)
            result = {'error': 'its relax process failed: %s' % batch_state.describe(exc), 'timings': {}}
        # Relaxation's eager jax ops compile too, but count as relax time.
        stats.update(relax_s=round(_sum(result['timings'], 'relax_'), 3), error=result['error'],
                     relax_start=result.get('relax_start'), relax_end=result.get('relax_end'))
        if not result['error']:
            ranked = result['ranked']
            stats['best'] = batch_state.best_scores(dict(result['scores'][ranked[0]], model=ranked[0]))
        self._finished(unit, stats)

    def _finished(self, unit, stats):
        name = unit[0]['name']
        self.record['targets'][name] = stats
        fields = dict(_times(stats), relax_start=stats.get('relax_start'), relax_end=stats.get('relax_end'))
        if stats['error']:
            log.info('%s FAILED: %s', name, stats['error'])
            batch_state.write_stage(self.out, name, Stage.PREDICT, State.FAILED, error=stats['error'], **fields)
        else:
            batch_state.write_stage(self.out, name, Stage.PREDICT, State.DONE, best=stats['best'], **fields)
            self._copy_duplicates(unit)
            log.info('%s: %d aa (padded to %s): predict %.1f s, compile %.1f s (%d), relax %.1f s', name,
                     stats['length'], stats['padded_length'], stats['predict_s'], stats['compile_s'],
                     stats['compiles'], stats['relax_s'])
        self._write_record()

    def _copy_duplicates(self, unit):
        """Each duplicate name gets the primary's outputs (hard links where possible) and a meta
        that names it and its source."""
        src = os.path.join(self.out, unit[0]['name'])
        for entry in unit[1:]:
            if batch_state.read_stage(self.out, entry['name'], Stage.PREDICT).get('state') == State.DONE:
                continue
            tmp = os.path.join(files.temp_dir(self.out, 'copy-'), entry['name'])
            shutil.copytree(src, tmp, copy_function=_link_or_copy, ignore=shutil.ignore_patterns('.tmp-*', '.work', locks.LOCK_FILE))
            stored = meta.load(tmp)
            files.write_json(os.path.join(tmp, meta.META_FILE),
                             dict(stored, target=entry['name'], features_source='duplicate of %s' % unit[0]['name']))
            files.publish_dir(tmp, os.path.join(self.out, entry['name']), replace=True)
            os.rmdir(os.path.dirname(tmp))
            batch_state.write_stage(self.out, entry['name'], Stage.PREDICT, State.DONE, duplicate_of=unit[0]['name'])

    def _write_record(self):
        targets = self.record['targets'].values()
        wall = time.time() - self.started
        busy = sum(t['predict_s'] for t in targets)
        self.record.update(wall_s=round(wall, 3), busy_s=round(busy, 3),
                           relax_s=round(sum(t['relax_s'] for t in targets), 3),
                           gpu_busy_fraction=round(busy / wall, 4) if wall else 0.0,
                           compiles=sum(t['compiles'] for t in targets),
                           compile_s=round(sum(t['compile_s'] for t in targets), 3))
        files.write_json(batch_state.batch_dir(self.out, 'timings', 'worker-%s-%s.json'
                                                % (self.worker_id, self.owner.replace(':', '-'))), self.record)


def _sum(timings, prefix):
    return sum(v for k, v in timings.items() if k.startswith(prefix) and not k.startswith('predict_and_compile'))


def _times(stats):
    return {k: stats[k] for k in ('compiles', 'compile_s', 'predict_s', 'relax_s', 'padded_length')}


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
