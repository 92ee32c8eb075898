"""--msa-mode mmseqs2: ColabFold's local MSA search for one protein, as colabfold_search runs it.

The MMseqs2 commands and parameters of colabfold/mmseqs/search.py (mmseqs_search_monomer) in
ColabFold 1.6.2 with colabfold_search's defaults: --use-env 1, --filter 1, -s unset, --db-load-mode 0,
--expand-eval inf, --align-eval 10, --diff 3000, no template search there (the kit's HHsearch on
pdb70 takes this A3M as its query, as --msa does). Three iterations on UniRef30's clusters, the
hits expanded to the clusters' members and realigned, the environmental database searched with the
UniRef30 profile the same way, both filtered, and the two A3Ms merged for the query (mergedbs), the
query first in each. --gpu: the same on MMseqs2-GPU (mmseqs_gpu). Standard library only; the
searches module runs it in a forked child.
"""
import functools
import logging
import os
import subprocess
import sys
import textwrap

from data_sync.registry import COLABFOLD
from fold_runtime.cpu_stage import mmseqs_gpu

log = logging.getLogger(__name__)

COLABFOLD_VERSION = '1.6.2'
A3M_FILE = 'colabfold.a3m'   # the merged A3M under msas/
QUERY_ID = '101'             # colabfold_search's name for a query's first chain: the A3M's first row
DB_LOAD_MODE = '0'           # colabfold_search's default (and ColabFold's choice without an index)
# colabfold_search's --filter 1 sets these; its other defaults are EXPAND_EVAL and DIFF.
ALIGN_EVAL, QSC, MAX_ACCEPT = '10', '0.8', '100000'
EXPAND_EVAL, DIFF = 'inf', '3000'
# What --explain prints about the mode.
_EXPLAIN = """--msa-mode mmseqs2 (opt-in; the default, jackhmmer, runs DeepMind's searches): the MSA is
not DeepMind's. ColabFold's local search (colabfold_search of ColabFold %s, its commands and
parameters) with MMseqs2 on ColabFold's UniRef30 and environmental databases (%s) replaces jackhmmer
on UniRef90 and MGnify and HHblits on BFD and UniRef30; its merged A3M is the only MSA, and HHsearch
on pdb70 finds the templates from it, as ColabFold does with a custom MSA (a complex: each chain's
A3M is its unpaired MSA, hmmsearch on pdb_seqres its templates, and UniProt still pairs the chains,
as in AlphaFold-Multimer). Where MMseqs2 is older
than ColabFold expects (release 14 has no --prefilter-mode), the option is left out: ColabFold's 0
is the k-mer prefilter, the only one release 14 has. As colabfold_search does, it passes --k-score
'seq:96,prof:80' with the quotes, which MMseqs2 ignores (ColabFold issue #804): MMseqs2's default
sensitivity. features.meta.json records msa_mode, the MMseqs2 version (tools) and the ColabFold
databases, so features of one mode are never reused in the other. --gpu runs the same commands on
MMseqs2-GPU as colabfold_search --gpu 1 --gpu-server 1 does: its ungapped prefilter at full
sensitivity replaces the k-mer prefilter, so the hits differ from the CPU search's; features.meta.json
records mmseqs_gpu."""
EXPLAIN = textwrap.fill(' '.join(_EXPLAIN.split()) % (COLABFOLD_VERSION, ', '.join(sorted(COLABFOLD))), 100)


def a3m(mmseqs, sequence, uniref_db, env_db, work, threads, gpu=False):
    """ColabFold's merged A3M for sequence: UniRef30's MSA, then the environmental database's.
    uniref_db, env_db: the databases' path prefixes; work: a new directory for MMseqs2's files;
    gpu: on MMseqs2-GPU, as colabfold_search --gpu 1 --gpu-server 1 (mmseqs_gpu)."""
    return a3ms(mmseqs, [sequence], uniref_db, env_db, work, threads, gpu)[0]


def a3ms(mmseqs, sequences, uniref_db, env_db, work, threads, gpu=False):
    """The A3Ms of many proteins from one MMseqs2 run, each as a3m() makes it alone: colabfold_search
    with many queries writes each monomer as its first chain (QUERY_ID), and every MMseqs2 step
    works per query, so only the databases' reading is shared."""
    with mmseqs_gpu.servers(mmseqs, [uniref_db, env_db] if gpu else []):
        return _a3ms(mmseqs, sequences, uniref_db, env_db, work, threads, gpu)


def _a3ms(mmseqs, sequences, uniref_db, env_db, work, threads, gpu):
    run = _Runner(mmseqs, str(threads), _suffixes(env_db))
    os.makedirs(work)
    base = functools.partial(os.path.join, work)
    with open(base('query.fas'), 'w') as f:
        f.writelines('>%s\n%s\n' % (QUERY_ID, s) for s in sequences)
    run('createdb', base('query.fas'), base('qdb'), '--shuffle', '0', '--dbtype', '1')
    search = run.threads() + _search_param(mmseqs, gpu)
    _search_uniref(run, base, uniref_db, search)
    _search_env(run, base, env_db, search)
    run('mergedbs', base('qdb'), base('final.a3m'), base('uniref.a3m'), base('bfd.mgnify30.metaeuk30.smag30.a3m'))
    run('unpackdb', base('final.a3m'), work, '--unpack-name-mode', '0', '--unpack-suffix', '.a3m')
    texts = []
    for key in range(len(sequences)):   # createdb --shuffle 0: the keys follow query.fas
        with open(base('%d.a3m' % key)) as f:
            texts.append(f.read())
    return texts


def _search_uniref(run, base, db, search):
    run('search', base('qdb'), db, base('res'), base('tmp'), *search)
    run('mvdb', base('tmp/latest/profile_1'), base('prof_res'))
    run('lndb', base('qdb_h'), base('prof_res_h'))
    run('expandaln', base('qdb'), run.members(db), base('res'), run.alignments(db), base('res_exp'),
        '--db-load-mode', DB_LOAD_MODE, *run.threads(), '--expansion-mode', '0', '-e', EXPAND_EVAL,
        '--expand-filter-clusters', '1', '--max-seq-id', '0.95')
    run('align', base('prof_res'), run.members(db), base('res_exp'), base('res_exp_realign'), *_align_param(run))
    run('filterresult', base('qdb'), run.members(db), base('res_exp_realign'), base('res_exp_realign_filter'),
        '--db-load-mode', DB_LOAD_MODE, '--qid', '0', '--qsc', QSC, '--diff', '0', *run.threads(),
        '--max-seq-id', '1.0', '--filter-min-enable', '100')
    run('result2msa', base('qdb'), run.members(db), base('res_exp_realign_filter'), base('uniref.a3m'),
        *_msa_param(run))


def _search_env(run, base, db, search):
    """The environmental database, searched with the UniRef30 search's profile."""
    run('search', base('prof_res'), db, base('res_env'), base('tmp3'), *search)
    run('expandaln', base('prof_res'), run.members(db), base('res_env'), run.alignments(db), base('res_env_exp'),
        '-e', EXPAND_EVAL, '--expansion-mode', '0', '--db-load-mode', DB_LOAD_MODE, *run.threads())
    run('align', base('tmp3/latest/profile_1'), run.members(db), base('res_env_exp'), base('res_env_exp_realign'),
        *_align_param(run))
    run('filterresult', base('qdb'), run.members(db), base('res_env_exp_realign'),
        base('res_env_exp_realign_filter'), '--db-load-mode', DB_LOAD_MODE, '--qid', '0', '--qsc', QSC,
        '--diff', '0', '--max-seq-id', '1.0', *run.threads(), '--filter-min-enable', '100')
    run('result2msa', base('qdb'), run.members(db), base('res_env_exp_realign_filter'),
        base('bfd.mgnify30.metaeuk30.smag30.a3m'), *_msa_param(run))


def _search_param(mmseqs, gpu):
    """colabfold_search's search options. On the CPU with -s unset: ColabFold passes its k-mer
    thresholds instead, with the quotes inside the argument, which MMseqs2 does not parse, so
    its default sensitivity applies (ColabFold issue #804, open). The kit passes the same
    argument, so that its A3M stays colabfold_search's. gpu: mmseqs_gpu's instead."""
    param = ['--num-iterations', '3', '--db-load-mode', DB_LOAD_MODE, '-a', '-e', '0.1',
             '--max-seqs', '10000']
    if gpu:
        return param + mmseqs_gpu.SEARCH_PARAM
    if _has_option(mmseqs, 'search', '--prefilter-mode'):
        param += ['--prefilter-mode', '0']
    return param + ['--k-score', "'seq:96,prof:80'"]


def _align_param(run):
    return ['--db-load-mode', DB_LOAD_MODE, '-e', ALIGN_EVAL, '--max-accept', MAX_ACCEPT] + run.threads() + [
        '--alt-ali', '10', '-a']


def _msa_param(run):
    """result2msa's A3M output and ColabFold's MSA filter."""
    return ['--msa-format-mode', '6', '--db-load-mode', DB_LOAD_MODE] + run.threads() + [
        '--filter-msa', '1', '--filter-min-enable', '1000', '--diff', DIFF, '--qid', '0.0,0.2,0.4,0.6,0.8,1.0',
        '--qsc', '0', '--max-seq-id', '0.95']


def _suffixes(env_db):
    """(members, alignments): where a database's members and their alignments are read from. ColabFold
    reads both from the index that setup_databases.sh makes, unless $MMSEQS_IGNORE_INDEX is set, else
    from _seq and _aln; it decides this by the last database it checks, the environmental one, for
    both databases."""
    indexed = os.path.isfile(env_db + '.idx') or os.path.isfile(env_db + '.idx.index')
    if indexed and not os.environ.get('MMSEQS_IGNORE_INDEX'):
        return '.idx', '.idx'
    return '_seq', '_aln'


def _has_option(mmseqs, module, option):
    help_text = subprocess.run([mmseqs, module, '-h'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True).stdout
    return option in help_text


class _Runner(object):
    """Runs one MMseqs2 module, its output into this process's stderr (the search's log)."""

    def __init__(self, mmseqs, threads, suffixes):
        self.mmseqs, self.thread_count, self.suffixes = mmseqs, threads, suffixes

    def threads(self):
        return ['--threads', self.thread_count]

    def members(self, db):
        return db + self.suffixes[0]

    def alignments(self, db):
        return db + self.suffixes[1]

    def __call__(self, module, *args):
        log.info('mmseqs %s', module)   # what a batch's log shows of its MMseqs2 runs
        sys.stderr.flush()
        # stdout=2: MMseqs2's progress goes to the log too. MMSEQS_CALL_DEPTH=1: it does not print
        # its parameter lists (ColabFold sets it too).
        code = subprocess.run([self.mmseqs, module] + list(args), stdout=2,
                              env=dict(os.environ, MMSEQS_CALL_DEPTH='1')).returncode
        if code != 0:
            raise RuntimeError('mmseqs %s exited with status %d' % (module, code))
