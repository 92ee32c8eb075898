"""Jackhmmer and hmmsearch on a sharded database (alphafold-data shard), with the unsharded
search's result.

AlphaFold runs jackhmmer with one iteration (hmmsearch: always one), where a sequence's E-value is its P-value times -Z:
with -Z set to the whole database's sequence count, each shard reports exactly the sequences the
unsharded search reports. Domains are another matter: their E-values use --domZ, which jackhmmer
sets to the number of sequences reported (a shard's own, smaller count), and it decides which
domains enter the alignment (--incdomE). So the search runs in two passes:
  1. each shard, AlphaFold's jackhmmer with -Z the whole count: which sequences it reports;
  2. AlphaFold's jackhmmer with the same -Z on just those sequences, gathered shard by shard.
     Every one of them is reported again (same P-value, same -Z), so --domZ is the unsharded
     search's, and HMMER itself ranks (by score, ties by name: not by database order), aligns
     and lays out the hits: the alignment is the unsharded one, truncated by the wrapper to the
     same cap.
Pass 2 searches the hits, not the database; gathering them reads the shards with hits once more.
"""
import os
import shutil
import subprocess
from concurrent import futures

from alphafold.data.tools import jackhmmer

from fold_runtime import compat

TOOLS = ('jackhmmer', 'hmmsearch')   # the searches that read a shardable database
_WHITESPACE = (b' ', b'\t', b'\r', b'\x0b', b'\x0c')   # what bytes.split() splits at, but the newline


def threads(cpus, shards):
    """(shards searched at a time, jackhmmer threads each): a search's cpus spread over its shards."""
    at_once = max(1, min(shards, cpus))
    return at_once, max(1, cpus // at_once)


def describe(shards, cpus):
    """A sharded search's core plan, for the log."""
    at_once, each = threads(cpus, len(shards.paths))
    return '%d shards (%d sequences in all), %d at a time with %d thread%s each, of its %d cpu%s' % (
        len(shards.paths), shards.sequences, at_once, each, '' if each == 1 else 's', cpus, '' if cpus == 1 else 's')


def search(binary, query_fasta, shards, cpus, max_sequences, work_prefix):
    """Stockholm text equal to AlphaFold's jackhmmer on the whole database, truncated to
    max_sequences. shards: databases.Shards; work_prefix: the path prefix of the gathered sequences' files."""
    def first(path, n_cpu, _):
        result = compat.jackhmmer_result(_runner(binary, path, shards.sequences, n_cpu, tblout=True),
                                         query_fasta, max_sequences)
        return result['sto'], result['tbl']

    def second(database):
        return compat.jackhmmer_sto(_runner(binary, database, shards.sequences, cpus), query_fasta, max_sequences)
    return _two_passes(first, second, shards, cpus, work_prefix)


def hmmsearch(binary, hmmbuild_binary, query_sto, shards, cpus, work_prefix):
    """Stockholm text equal to AlphaFold's hmmsearch (the multimer template search) of query_sto's
    profile on the whole database: the same two passes, -Z the whole count (AlphaFold sets none, so
    HMMER uses the database's count: the same number), --domZ again from pass 2's reports."""
    def first(path, n_cpu, tbl):
        sto = _hmmsearch(binary, hmmbuild_binary, path, shards.sequences, n_cpu, ['--tblout', tbl]).query(query_sto)
        with open(tbl) as f:
            return sto, f.read()

    def second(database):
        return _hmmsearch(binary, hmmbuild_binary, database, shards.sequences, cpus).query(query_sto)
    return _two_passes(first, second, shards, cpus, work_prefix)


def _hmmsearch(binary, hmmbuild_binary, database, sequences, cpus, extra=()):
    """AlphaFold's Hmmsearch with its own flags, and -Z (and extra) added."""
    runner = compat.hmmsearch(binary, hmmbuild_binary, database)
    runner.flags = list(runner.flags) + ['-Z', str(sequences)] + list(extra)
    runner.cpu = cpus
    return runner


def _two_passes(first, second, shards, cpus, work_prefix):
    """first(shard, threads, its table's path) -> (Stockholm text, the hits' table) on each shard;
    then second(the gathered hits' FASTA) -> the search's Stockholm text."""
    at_once, each = threads(cpus, len(shards.paths))
    gathered = ['%s.%d.fasta' % (work_prefix, i + 1) for i in range(len(shards.paths))]

    def first_pass(i):
        """Shard i's hits written to gathered[i]: (how many, the Stockholm text when i is 0, else
        None: only a search with no hits at all uses one)."""
        sto, tbl = first(shards.paths[i], each, '%s.%d.tbl' % (work_prefix, i + 1))
        names = {line.split()[0].encode() for line in tbl.splitlines() if line.strip() and line[0] != '#'}
        return _copy_records(shards.paths[i], names, gathered[i]), sto if i == 0 else None
    with futures.ThreadPoolExecutor(at_once) as pool:
        passes = list(pool.map(first_pass, range(len(shards.paths))))
    if not any(found for found, _ in passes):   # no hits: shard 1's alignment, the query alone, is the search's
        return passes[0][1]
    database = work_prefix + '.fasta'
    _concatenate(gathered, database)
    return second(database)


def _runner(binary, database, sequences, cpus, tblout=False):
    return jackhmmer.Jackhmmer(binary_path=binary, database_path=database, n_cpu=cpus, z_value=sequences,
                               get_tblout=tblout)


def _copy_records(path, names, out):
    """Copy the FASTA records of path named in names (HMMER's name: the header's first word) to
    out, in order; returns how many."""
    copied = 0
    with open(out, 'wb') as dst:
        if not names:   # a shard without hits is not read again
            return 0
        with open(path, 'rb') as src:
            for offset in _header_offsets(path, names):
                src.seek(offset)
                dst.write(src.readline())
                copied += 1
                for line in iter(src.readline, b''):
                    if line.startswith(b'>'):
                        break
                    dst.write(line)
    return copied


def _header_offsets(path, names):
    """The byte offsets of path's headers whose name is in names, in order. grep -F scans the
    shard (about ten times Python's line loop, and outside the GIL, so the shards searched at
    once gather at once) for '>' and each name, and for '>' and whitespace (a name after
    whitespace: rare, so it costs nothing); a fixed string also matches longer names, so each
    line found is checked here as a header of one of the names."""
    patterns = b''.join(b'>' + name + b'\n' for name in sorted(names)) + b''.join(
        b'>' + space + b'\n' for space in _WHITESPACE)
    found = subprocess.run(['grep', '-F', '-b', '-f', '-', '--', path], input=patterns, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=dict(os.environ, LC_ALL='C'))
    if found.returncode > 1:   # 1: no line matched
        raise OSError('grep %s: %s' % (path, found.stderr.decode(errors='replace').strip()))
    offsets = []
    for line in found.stdout.splitlines():
        offset, _, text = line.partition(b':')
        words = text[1:].split(None, 1)
        if text.startswith(b'>') and words and words[0] in names:
            offsets.append(int(offset))
    return offsets


def _concatenate(paths, out):
    with open(out, 'wb') as dst:
        for path in paths:
            with open(path, 'rb') as src:
                shutil.copyfileobj(src, dst)
