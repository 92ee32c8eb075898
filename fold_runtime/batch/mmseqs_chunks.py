"""--msa-mode mmseqs2 in alphafold-batch: ColabFold's search for a chunk of the batch's proteins in one
MMseqs2 run, so the databases are read once per chunk, not once per protein.

submit splits the unique proteins into chunks in batch order (batch.json's mmseqs_chunks). The
first CPU task of a chunk to lock it searches every protein of the chunk that has neither features
nor a stored A3M; the chunk's other tasks wait for the lock and find theirs stored. Each task then
builds its features from its A3M as alphafold-msa --msa-mode mmseqs2 does (HHsearch templates from
it, the same meta), its search skipped because msas/colabfold.a3m is there.

Chunk size: a chunk's queries need about PER_QUERY_BYTES of memory each beside the part of the
databases MMseqs2 keeps in memory (all of them, or half the memory when they are larger: MMseqs2
splits larger ones); so chunk = (memory - min(databases, memory / 2)) / PER_QUERY_BYTES, between 1
and MAX_CHUNK. Memory: a Slurm CPU task's cpu_mem, or this host's memory shared by the local
executor's concurrent tasks.
"""
import logging
import os
import time

from data_sync import registry
from fold_runtime import target_layout
from fold_runtime.batch import state
from fold_runtime.cpu_stage import colabfold_search
from fold_runtime.option_table import SLURM
from kit_common import digests, files, locks
from kit_common.errors import EXIT_TOOL, KitError

log = logging.getLogger(__name__)
# ColabFold keeps up to 10,000 hits per query and iteration (--max-seqs), expanded to the clusters'
# members and realigned: a query's results, in MMseqs2's memory at once, stay below this.
PER_QUERY_BYTES = 256 * 2 ** 20
MAX_CHUNK = 100         # ColabFold's own batches of queries are about this size
STORE = 'colabfold-msas'   # under .batch/: one A3M per protein and database state, and the chunk locks
_UNITS = {'K': 2 ** 10, 'M': 2 ** 20, 'G': 2 ** 30, 'T': 2 ** 40}


def chunk_size(memory_bytes, database_bytes):
    """The rule of the module's docstring."""
    resident = min(database_bytes, memory_bytes // 2)
    return int(max(1, min(MAX_CHUNK, (memory_bytes - resident) // PER_QUERY_BYTES)))


def plan(unit_names, data_dir, settings, cpus):
    """Chunks of unit names, in batch order, for batch.json; data_dir: where this host sees the
    databases (None or absent: their size counts as 0); cpus: the CPU stage's --cpus."""
    memory = task_memory(settings, cpus)
    size = chunk_size(memory, database_bytes(data_dir))
    chunks = [unit_names[i:i + size] for i in range(0, len(unit_names), size)]
    log.info('--msa-mode mmseqs2: %d unique protein(s) in %d MMseqs2 run(s) of up to %d (%.1f GB per CPU task)',
             len(unit_names), len(chunks), size, memory / 1e9)
    return chunks


def task_memory(settings, cpus):
    """The memory of one CPU task: Slurm's cpu_mem, or the local executor's share of this host."""
    if settings.executor == SLURM:
        text = settings.slurm.cpu_mem
        unit = text[-1].upper() if text[-1].isalpha() else 'M'   # Slurm: no unit means megabytes
        return int(text.rstrip('KMGTkmgt')) * _UNITS[unit]
    host = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    at_once = max(1, cpus // max(1, min(settings.slurm.cpus_per_task, cpus)))   # as the local executor runs them
    return host // at_once


def database_bytes(data_dir):
    """What ColabFold's databases hold on disk: every file of theirs under colabfold/."""
    if not data_dir:
        return 0
    total = 0
    for db in registry.COLABFOLD.values():
        for prefix in db.paths.values():
            folder, stem = os.path.split(os.path.join(data_dir, prefix))
            if os.path.isdir(folder):
                total += sum(e.stat().st_size for e in os.scandir(folder) if e.name.startswith(stem) and e.is_file())
    return total


def a3m(out, batch, unit, env):
    """unit's A3M: from the store, else from its chunk's one MMseqs2 run (under the chunk's lock)."""
    chunk = next(c for c in batch['mmseqs_chunks'] if unit in c)
    sequences = {t['primary']: t['sequence'] for t in batch['targets']}
    store = state.batch_dir(out, STORE)
    files.make_dirs(store)
    path = stored_path(store, env, sequences[unit])
    if not os.path.exists(path):
        index = batch['mmseqs_chunks'].index(chunk)
        lock_dir = os.path.join(store, 'chunk-%d' % index)
        files.make_dirs(lock_dir)
        with locks.exclusive(lock_dir, 'the MMseqs2 run of chunk %d' % index):
            if not os.path.exists(path):
                _search(out, unit, chunk, sequences, store, lock_dir, env)
    with open(path) as f:
        return f.read()


def stored_path(store, env, sequence):
    """A protein's A3M in the store, named by what makes it: the sequence, the databases' state and
    MMseqs2's version (a database update or another MMseqs2 searches again), and --gpu."""
    made_by = {'sequence': sequence, 'databases': env.fingerprint, 'mmseqs': env.tool_versions['mmseqs'],
               'colabfold': colabfold_search.COLABFOLD_VERSION}
    if env.opts.mmseqs_gpu:   # (the keys of CPU searches stay those of before --gpu)
        made_by['gpu'] = True
    key = digests.json_digest(made_by)
    return os.path.join(store, key + '.a3m')


def _search(out, unit, chunk, sequences, store, lock_dir, env):
    """One MMseqs2 run for unit and the chunk's proteins that have neither features nor a stored A3M."""
    todo = [u for u in chunk if u == unit or not (os.path.exists(stored_path(store, env, sequences[u]))
                                                  or os.path.exists(os.path.join(out, u, target_layout.FEATURES)))]
    work = os.path.join(lock_dir, 'work')
    files.remove_tree(work)
    started = time.time()
    log.info('colabfold_search: one MMseqs2 run for %d protein(s) of chunk %s', len(todo), ', '.join(todo))
    try:
        texts = colabfold_search.a3ms(env.binaries['mmseqs'], [sequences[u] for u in todo],
                                      env.paths['colabfold_uniref'], env.paths['colabfold_envdb'], work, env.opts.cpus,
                                      env.opts.mmseqs_gpu)
    except RuntimeError as exc:   # MMseqs2's own output is in this task's log, above
        raise KitError('the MMseqs2 run of %s failed: %s' % (', '.join(todo), exc),
                       'see MMseqs2\'s output above in this log; then alphafold-batch retry', EXIT_TOOL)
    for u, text in zip(todo, texts):
        files.write_text(stored_path(store, env, sequences[u]), text)
    files.remove_tree(work)
    log.info('colabfold_search: %d A3M(s) in %.1f s', len(todo), time.time() - started)
