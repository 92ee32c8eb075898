"""One batch target's CPU stage, as a Slurm array task or a local pool job runs it: the CPU
stage of alphafold-msa, with its start, end, features source and any error recorded on disk."""
import os

from fold_runtime import batch_state, cli, fasta, meta, msa_stage
from fold_runtime.errors import KitError


def run(out, name, cpus=None, log=cli.log):
    batch = batch_state.load(out)
    entry = next((t for t in batch['targets'] if t['name'] == name), None)
    if entry is None:
        raise KitError('target %s is not in the batch at %s' % (name, out), 'see alphafold-batch status %s' % out)
    args = cli.stage_args(batch['run_args'], out)
    if cpus:
        args.cpus = cpus
    target = fasta.Target(entry['name'], entry['description'], entry['sequence'], entry['fasta'])
    batch_state.write_stage(out, name, 'msa', 'running')
    try:
        opts = cli.cpu_stage_options(args)
        timings = msa_stage.run_target(target, opts, msa_stage.Environment(opts), log=log)
    except BaseException as exc:   # SystemExit: SIGTERM from a time limit, scancel or preemption
        batch_state.write_stage(out, name, 'msa', 'failed', error=_describe(exc))
        raise
    source = meta.load(os.path.join(out, name)).get('features_source', 'cpu_stage')
    batch_state.write_stage(out, name, 'msa', 'done', features_source=source,
                            seconds=timings.get('features'))
    return 0


def _describe(exc):
    if isinstance(exc, KitError):
        return str(exc)
    if isinstance(exc, SystemExit):
        return batch_state.terminated(exc.code)
    return '%s: %s' % (type(exc).__name__, exc)
