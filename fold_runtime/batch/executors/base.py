"""The interface every executor implements (as Snakemake's executor plugins share one): submit
the work, tell which of its submissions are still active, cancel them, report job states, and
tell a GPU worker whether the CPU stage may still produce features."""


class Executor(object):
    name = None

    def __init__(self, out, settings, msa_gpu=False):
        """out: the batch directory; settings: options.BatchSettings; msa_gpu: the CPU stages search
        on a GPU (--gpu), so their jobs need one."""
        self.out, self.settings, self.msa_gpu = out, settings, msa_gpu

    @classmethod
    def check(cls, out):
        """A KitError when this executor cannot run a batch in the directory out (checked at submit,
        before anything is written)."""

    def submit(self, msa_units, n_units, dry_run, progress, on_submitted):
        """Run or submit the CPU stages of msa_units and GPU workers for n_units units. Calls
        on_submitted(state.Submission) once the work exists (what active() and cancel() read back).
        Returns the number of units left unfinished when it waited for them, else 0."""
        raise NotImplementedError

    @classmethod
    def active(cls, submission):
        """Descriptions of this submission's jobs or processes that are still queued or running."""
        raise NotImplementedError

    @classmethod
    def cancel(cls, submission):
        raise NotImplementedError

    @classmethod
    def owns(cls, job_id):
        """Whether a job id recorded in a target's state belongs to this executor."""
        raise NotImplementedError

    @classmethod
    def never_starting(cls, submission):
        """(job, reason) for each of the submission's jobs the scheduler will never start as asked."""
        return []

    @classmethod
    def job_states(cls, job_ids):
        """{job id: scheduler state} for the ids this executor owns; {} when it has no scheduler."""
        return {}

    @classmethod
    def cpu_stage_active(cls, token):
        """For a GPU worker: whether the CPU stage named by token (what submit() passed to the
        worker) may still produce features."""
        raise NotImplementedError
