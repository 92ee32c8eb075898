"""The CPU stage's database searches, run concurrently as separate processes.

Each search runs AlphaFold's own tool wrapper (alphafold.data.tools.*) in a forked child
process in its own session, so the command lines, flags and caps are exactly AlphaFold's, while
this module can time a search out and kill the child and its tool together. Forking (not a
fresh interpreter) keeps the start-up cost near zero. Each child writes its result to msas/
atomically, so a killed run resumes from the searches that finished.
"""
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import sys
import time
from typing import Dict, List, NamedTuple, Optional

from alphafold.data.tools import hhblits, hhsearch, jackhmmer

from data_sync.registry import MMSEQS2, REDUCED_DBS
from fold_runtime import compat, progress
from fold_runtime.cpu_stage import colabfold_search, sharded, stored
from fold_runtime.cpu_stage.databases import Shards
from kit_common import files, tools
from kit_common.errors import EXIT_IO, EXIT_TOOL, KitError

log = logging.getLogger(__name__)
STDERR_TAIL_LINES = 20


class Search(NamedTuple):
    name: str                 # key in timings.json: uniref90, mgnify, bfd_uniref30, small_bfd, pdb70, colabfold
    tool: str                 # jackhmmer, hhblits, hhsearch, hmmsearch or mmseqs
    out_file: str             # AlphaFold's file name under msas/ (a complex: <chain_id>/<name>)
    databases: List[str]
    max_sequences: Optional[int] = None
    cpus: int = 1
    after: Optional[str] = None   # a search whose output is this one's input
    query_a3m: Optional[str] = None   # hhsearch: an A3M under msas/ as its input, not UniRef90's hits
    gpu: bool = False         # mmseqs: on MMseqs2-GPU (--gpu)
    query: Optional[str] = None   # the query FASTA, when not the run's (a complex's chain)
    shards: Optional[Shards] = None   # jackhmmer, hmmsearch: its database's shards, searched instead


def split_cpus(total, n=3):
    """AlphaFold's 8:8:4 thread proportion (jackhmmer, jackhmmer, hhblits), at least 1 each."""
    first = max(1, int(round(total * 0.4)))
    second = max(1, int(round(total * 0.4)))
    return [first, second, max(1, total - first - second)][:n]


def plan(paths, preset, cpus, templates=True, user_msa=None, msa_mode=None, shards=None, gpu=False):
    """The searches of a preset, in the stock pipeline's order. templates False: no template
    search (--no-templates); user_msa: the file name under msas/ of a precomputed MSA (--msa),
    which replaces the MSA searches and is the template search's input, as in ColabFold;
    msa_mode MMSEQS2: ColabFold's search makes that MSA first, on all the CPUs (gpu: on MMseqs2-GPU);
    shards: databases.shards(), the sharded databases."""
    if msa_mode == MMSEQS2:
        searches = [_colabfold(paths, cpus, gpu),
                    Search('pdb70', 'hhsearch', 'pdb_hits.hhr', [paths['pdb70']], after='colabfold',
                           query_a3m=colabfold_search.A3M_FILE)]
    elif user_msa:
        searches = [Search('pdb70', 'hhsearch', 'pdb_hits.hhr', [paths['pdb70']], query_a3m=user_msa)]
    else:
        searches = _msa_searches(paths, preset, cpus)
    return with_shards([s for s in searches if templates or s.name != 'pdb70'], shards)


def with_shards(searches, shards):
    """The jackhmmer and hmmsearch searches of a sharded database search its shards."""
    return [s._replace(shards=(shards or {}).get(s.databases[0])) if s.tool in sharded.TOOLS else s
            for s in searches]


def chain_plan(paths, preset, cpus, templates, chain_id, query, paired, shards=None, msa_mode=None, gpu=False):
    """AlphaFold-Multimer's searches for one chain of a complex, in msas/<chain_id>/: the monomer
    searches with templates by hmmsearch on pdb_seqres, and (paired: the complex has two or more
    distinct chains) jackhmmer on UniProt for MSA pairing, uncapped as AlphaFold stores it. Names are
    prefixed '<chain_id>:' so that one run_all schedules every chain's searches together. msa_mode
    MMSEQS2: ColabFold's search replaces the monomer searches (gpu: on MMseqs2-GPU), and hmmsearch
    takes its A3M."""
    if msa_mode == MMSEQS2:
        searches = [_colabfold(paths, cpus, gpu),
                    Search('pdb_seqres', 'hmmsearch', 'pdb_hits.sto', [paths['pdb_seqres']], after='colabfold',
                           query_a3m=colabfold_search.A3M_FILE)]
    else:
        # hmmsearch starts when UniRef90's search has ended: its CPUs (for shards; unsharded, AlphaFold's 8 threads).
        searches = _msa_searches(paths, preset, cpus, Search('pdb_seqres', 'hmmsearch', 'pdb_hits.sto',
                                                             [paths['pdb_seqres']], cpus=split_cpus(cpus)[0],
                                                             after='uniref90'))
    if paired:   # UniProt is as large as UniRef90: its share of the CPUs
        searches.append(Search('uniprot', 'jackhmmer', 'uniprot_hits.sto', [paths['uniprot']], None, searches[0].cpus))
    return with_shards([s._replace(name='%s:%s' % (chain_id, s.name), out_file=os.path.join(chain_id, s.out_file),
                                   query=query, after=s.after and '%s:%s' % (chain_id, s.after))
                        for s in searches if templates or s.tool != 'hmmsearch'], shards)


def _colabfold(paths, cpus, gpu):
    return Search('colabfold', 'mmseqs', colabfold_search.A3M_FILE,
                  [paths['colabfold_uniref'], paths['colabfold_envdb']], cpus=cpus, gpu=gpu)


def _msa_searches(paths, preset, cpus, template_search=None):
    """template_search: the multimer preset's, instead of HHsearch on pdb70."""
    c_uniref, c_mgnify, c_bfd = split_cpus(cpus)
    searches = [
        Search('uniref90', 'jackhmmer', 'uniref90_hits.sto', [paths['uniref90']],
               compat.UNIREF_MAX_HITS, c_uniref),
        Search('mgnify', 'jackhmmer', 'mgnify_hits.sto', [paths['mgnify']],
               compat.MGNIFY_MAX_HITS, c_mgnify),
        template_search or Search('pdb70', 'hhsearch', 'pdb_hits.hhr', [paths['pdb70']], after='uniref90'),
    ]
    if preset == REDUCED_DBS:
        searches.append(Search('small_bfd', 'jackhmmer', 'small_bfd_hits.sto',
                               [paths['small_bfd']], None, c_bfd))
    else:
        searches.append(Search('bfd_uniref30', 'hhblits', 'bfd_uniref_hits.a3m',
                               [paths['bfd'], paths['uniref30']], None, c_bfd))
    return searches


class _Running(NamedTuple):
    search: Search
    proc: multiprocessing.Process
    stderr_path: str
    started: float


def run_all(searches, binaries, query_fasta, msa_dir, work_dir, timeout=None, serial=False) -> Dict[str, float]:
    """Run searches whose output is not in msa_dir yet; return wall seconds per search run.

    Concurrent by default: a search starts as soon as its input exists. serial=True runs them
    one after another in the stock order, for comparison.
    """
    done = _stored(searches, query_fasta, msa_dir)
    pending = [s for s in searches if s.name not in done]
    running = []   # type: List[_Running]
    timings = {}
    try:
        _run_loop(pending, running, done, timings, binaries, query_fasta, msa_dir, work_dir, timeout, serial)
    finally:
        for r in running:
            _kill(r.proc)
    return timings


def _stored(searches, query_fasta, msa_dir):
    """The names of the searches whose stored results are reused: each checked against its query,
    and only beside the stored result it was made from (the template search's input)."""
    done = set()
    for s in searches:   # in plan order: a search comes after its input
        path = os.path.join(msa_dir, s.out_file)
        if os.path.exists(path) and (not s.after or s.after in done):
            stored.check(path, s.tool, stored.query_sequence(s.query or query_fasta))
            done.add(s.name)
    for name in sorted(done):
        log.info('  %-13s reusing its stored result', name)
    return done


def _describe(running):
    """The heartbeat's words: each running search, its tool and how long it has run."""
    now = time.time()
    return 'searches ' + ', '.join('%s (%s, %s)' % (r.search.name, r.search.tool, progress.elapsed(now - r.started))
                                   for r in list(running))


def _run_loop(pending, running, done, timings, binaries, query_fasta, msa_dir, work_dir, timeout, serial):
    """Start each search when its input exists (all at once unless serial), until all finished."""
    heartbeat = progress.Ticker(lambda: _describe(running))
    while pending or running:
        heartbeat.tick()
        for s in list(pending):
            if serial and running:
                break
            if s.after and s.after not in done:
                if serial:
                    break
                continue
            pending.remove(s)
            running.append(_start(s, binaries, s.query or query_fasta, msa_dir, work_dir))
            log.info('  %-13s started: %s on %s%s', s.name, s.tool, ', '.join(os.path.basename(d) for d in s.databases),
                     ' in ' + sharded.describe(s.shards, s.cpus) if s.shards else '')
        time.sleep(0.05)
        for r in list(running):
            elapsed = time.time() - r.started
            if r.proc.is_alive():
                if timeout and elapsed > timeout:
                    raise KitError('search %s (%s) exceeded --timeout %gs' % (r.search.name, r.search.tool, timeout),
                                   'raise --timeout, or stage the databases on local disk '
                                   '(alphafold-data stage) if the file system is slow', EXIT_TOOL)
                continue
            running.remove(r)
            r.proc.join()
            if r.proc.exitcode != 0:
                raise _failed(r)
            timings[r.search.name] = round(elapsed, 3)
            done.add(r.search.name)
            log.info('  %-13s finished in %.1f s', r.search.name, elapsed)


def _start(search, binaries, query_fasta, msa_dir, work_dir):
    spec = dict(search._asdict(), binary=binaries[search.tool], hmmbuild=binaries.get('hmmbuild'),
                query_fasta=query_fasta, msa_dir=msa_dir, work_dir=os.path.join(work_dir, search.name))
    stderr_path = os.path.join(work_dir, search.name + '.log')
    proc = multiprocessing.get_context('fork').Process(target=_child, args=(spec, stderr_path))
    proc.start()
    return _Running(search, proc, stderr_path, time.time())


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)   # the child leads its own session: tool included
    except OSError:
        pass
    proc.join()


def _failed(r):
    """The KitError for a search child that failed; a full disk keeps its own exit status (5)."""
    tail = _tail(r.stderr_path)
    if r.proc.exitcode == EXIT_IO or tools.disk_full(tail):
        return KitError('search %s (%s) ran out of disk space; last lines of its output:\n%s'
                        % (r.search.name, r.search.tool, tail),
                        'free space on the output file system (msas/ and .work/ are written there); rerun to '
                        'resume from the searches that finished', EXIT_IO)
    return KitError('search %s (%s) failed with exit status %d; last lines of its output:\n%s'
                    % (r.search.name, r.search.tool, r.proc.exitcode, tail),
                    'check the database files and the message above; rerun to resume '
                    'from the searches that finished', EXIT_TOOL)


def _tail(path):
    with open(path, errors='replace') as f:
        lines = [l.rstrip() for l in f if l.strip()]
    return '\n'.join('    ' + l for l in lines[-STDERR_TAIL_LINES:]) or '    (no output)'


def _child(spec, stderr_path):
    """In the forked child: own session (so a timeout kills the tool too), stderr to a log, and
    the whole session killed when the parent dies (even by SIGKILL, which it cannot catch)."""
    os.setsid()
    signal.signal(signal.SIGTERM, _kill_own_session)
    _term_on_parent_death()
    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    sys.stderr = os.fdopen(2, 'w', buffering=1)
    try:
        _run_search(spec)
    except Exception as exc:  # the parent shows this text; a traceback would bury the tool's message
        print('%s: %s' % (type(exc).__name__, exc), file=sys.stderr)
        os._exit(_exit_status(exc))
    os._exit(0)


def _exit_status(exc):
    if isinstance(exc, KitError):
        return exc.exit_code
    if files.disk_full(exc):
        return EXIT_IO
    return 1


def _kill_own_session(signum, frame):
    os.killpg(0, signal.SIGKILL)   # this child and its tool


def _term_on_parent_death():
    """prctl(PR_SET_PDEATHSIG, SIGTERM): the kernel signals this child when its parent dies."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
        libc.prctl(1, signal.SIGTERM)   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return   # not Linux: a killed parent's children run to their end, as before
    if os.getppid() == 1:   # the parent died before prctl took effect
        _kill_own_session(signal.SIGTERM, None)


def _run_search(spec):
    """One search with AlphaFold's own wrapper, its output written atomically."""
    tool, dbs = spec['tool'], spec['databases']
    if tool == 'jackhmmer' and spec['shards']:
        os.makedirs(spec['work_dir'], exist_ok=True)   # the search's own directory
        result = sharded.search(spec['binary'], spec['query_fasta'], spec['shards'], spec['cpus'],
                                spec['max_sequences'], os.path.join(spec['work_dir'], 'hits'))
    elif tool == 'jackhmmer':
        runner = jackhmmer.Jackhmmer(binary_path=spec['binary'], database_path=dbs[0], n_cpu=spec['cpus'])
        result = compat.jackhmmer_sto(runner, spec['query_fasta'], spec['max_sequences'])
    elif tool == 'hhblits':
        runner = hhblits.HHBlits(binary_path=spec['binary'], databases=dbs, n_cpu=spec['cpus'])
        result = runner.query(spec['query_fasta'])[0]['a3m']
    elif tool == 'mmseqs':
        result = colabfold_search.a3m(spec['binary'], stored.query_sequence(spec['query_fasta']), dbs[0], dbs[1],
                                      spec['work_dir'], spec['cpus'], spec['gpu'])
    elif tool == 'hmmsearch' and spec['shards'] and not spec['query_a3m']:   # (mmseqs2's profile: unsharded)
        os.makedirs(spec['work_dir'], exist_ok=True)
        result = sharded.hmmsearch(spec['binary'], spec['hmmbuild'],
                                   compat.template_query_sto(_beside(spec, 'uniref90_hits.sto')), spec['shards'],
                                   spec['cpus'], os.path.join(spec['work_dir'], 'hits'))
    elif tool == 'hmmsearch':
        runner = compat.hmmsearch(spec['binary'], spec['hmmbuild'], dbs[0])
        if spec['query_a3m']:   # --msa-mode mmseqs2: the profile of ColabFold's A3M, by AlphaFold's hmmbuild
            result = runner.query_with_hmm(runner.hmmbuild_runner.build_profile_from_a3m(_template_query(spec)))
        else:
            result = runner.query(compat.template_query_sto(_beside(spec, 'uniref90_hits.sto')))
    else:
        runner = hhsearch.HHSearch(binary_path=spec['binary'], databases=dbs)
        result = runner.query(_template_query(spec))
    files.write_text(os.path.join(spec['msa_dir'], spec['out_file']), result)


def _template_query(spec):
    """HHsearch's input: the given A3M (--msa), else the UniRef90 hits as the stock pipeline makes it."""
    if spec['query_a3m']:
        with open(_beside(spec, spec['query_a3m'])) as f:
            return f.read()
    return compat.template_query_a3m(_beside(spec, 'uniref90_hits.sto'))


def _beside(spec, name):
    """The path of another file in the directory of this search's output (a complex's chain's)."""
    return os.path.join(spec['msa_dir'], os.path.dirname(spec['out_file']), name)
