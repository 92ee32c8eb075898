"""One batch target's CPU stage, as a Slurm array task or a local pool job runs it: the CPU
stage of alphafold-msa, with its start, end, features source and any error recorded on disk."""
import dataclasses
import functools
import os

from fold_runtime import meta
from fold_runtime.batch import mmseqs_chunks, state
from fold_runtime.cpu_stage import stage, user_msa
from kit_common.errors import KitError

# Complexes of a batch that share a chain: the first task to lock it searches it, the others wait
# for its cache entry (searching their other chains meanwhile).
CHAIN_LOCKS = 'chain-locks'


def run(out, name, cpus=None):
    batch = state.load(out)
    entry = next((t for t in batch['targets'] if t['name'] == name), None)
    if entry is None:
        raise KitError('target %s is not in the batch at %s' % (name, out), 'see alphafold-batch status %s' % out)
    cpu_opts = state.stored_options(batch)[0]
    if cpus:
        cpu_opts = dataclasses.replace(cpu_opts, cpus=cpus)
    target = state.target_of(entry)
    state.write_stage(out, name, state.Stage.MSA, state.State.RUNNING)
    try:
        msa = user_msa.load_batch(cpu_opts.msa_paths, [target]).get(name)   # checked again: it may have changed
        chunked = functools.partial(mmseqs_chunks.a3m, out, batch, name) if batch.get('mmseqs_chunks') else None
        env = stage.Environment(cpu_opts, chain_locks=state.batch_dir(out, CHAIN_LOCKS), colabfold_a3m=chunked)
        timings = stage.run_target(target, out, env, msa)
    except BaseException as exc:   # SystemExit: SIGTERM from a time limit, scancel or preemption
        state.write_stage(out, name, state.Stage.MSA, state.State.FAILED, error=state.describe(exc))
        raise
    source = meta.load(os.path.join(out, name)).get('features_source', 'cpu_stage')
    state.write_stage(out, name, state.Stage.MSA, state.State.DONE, features_source=source, seconds=timings.get('features'))
    return 0
