"""Executors of a batch: local (a process pool and GPU workers on this machine) and slurm (a
CPU-stage job array and GPU worker jobs). Both implement base.Executor."""
from fold_runtime.batch.executors.local import LocalExecutor
from fold_runtime.batch.executors.slurm import SlurmExecutor

EXECUTORS = {cls.name: cls for cls in (LocalExecutor, SlurmExecutor)}


def active(submissions):
    """Everything of these submissions still queued or running, described."""
    return [a for s in submissions for a in EXECUTORS[s.executor].active(s)]


def never_starting(submissions):
    return [j for s in submissions for j in EXECUTORS[s.executor].never_starting(s)]


def cancel(submissions):
    for s in submissions:
        EXECUTORS[s.executor].cancel(s)


def job_states(job_ids):
    states = {}
    for cls in EXECUTORS.values():
        states.update(cls.job_states([j for j in job_ids if j and cls.owns(j)]))
    return states
