"""Stored search results, checked against their query before a run reuses them.

A search whose output is already under msas/ is not run again (a killed run resumes). That file
may have come from elsewhere: a symlinked or copied msas/ (the "precomputed MSAs" habit), or
another protein's run. So, as --msa files are, each one is checked first: a jackhmmer, HHblits or
MMseqs2 (ColabFold's) alignment must start with the query's own sequence, and an HHsearch result
must have the query's number of match columns. Standard library only.
"""
import itertools
import re

from fold_runtime import fasta
from kit_common.errors import EXIT_MISMATCH, KitError

FIX = ('rerun with --overwrite to search again (it replaces a symlinked msas/ with a directory of its own), '
       'or remove the file')


def query_sequence(fasta_path):
    with open(fasta_path) as f:
        return fasta.raw_records(f.read(), fasta_path)[0][1]


def check(path, tool, query):
    """A KitError (exit 6) unless the result of tool stored at path was made for the sequence query."""
    try:
        with open(path, errors='replace') as f:
            found = _READERS[tool](f)
    except OSError as exc:
        raise KitError('cannot read the stored search result %s: %s' % (path, exc), FIX, EXIT_MISMATCH)
    if found is None or found == (query if isinstance(found, str) else len(query)):
        return
    if isinstance(found, str):
        what = 'its query is another sequence (%d residues: %s)' % (len(found), found[:30] + '...' * (len(found) > 30))
    else:
        what = 'it has %d match columns' % found
    raise KitError('%s, a stored %s result, was not made for this query of %d residues: %s'
                   % (path, tool, len(query), what), FIX, EXIT_MISMATCH)


def _sto_query(lines):
    """The first sequence of a Stockholm alignment (jackhmmer's query), over all its blocks."""
    name, parts = None, []
    for line in lines:
        if line.startswith('//'):
            break
        fields = line.split()
        if len(fields) != 2 or line.startswith('#'):
            continue
        name = name or fields[0]
        if fields[0] == name:
            parts.append(fields[1])
    return re.sub(r'[-.]', '', ''.join(parts)).upper()


def _a3m_query(lines):
    """The first sequence of an A3M file (HHblits' query), its match columns as parse_a3m keeps them."""
    lines = itertools.dropwhile(lambda l: not l.startswith('>'), lines)
    next(lines, None)
    rows = itertools.takewhile(lambda l: not l.startswith('>'), lines)
    return re.sub(r'[a-z.]', '', ''.join(l.strip() for l in rows)).upper()


def _hhr_columns(lines):
    """HHsearch's 'Match_columns' header line: the query's length (0 without one)."""
    for line in itertools.islice(lines, 20):
        match = re.match(r'Match_columns\s+(\d+)', line)
        if match:
            return int(match.group(1))
    return 0


def _hmmsearch_hits(lines):
    """hmmsearch's alignment holds the template hits only, no query row: it is checked through
    the UniRef90 alignment it was built from (searches.run_all reuses it only beside that one)."""
    return None


_READERS = {'jackhmmer': _sto_query, 'hhblits': _a3m_query, 'hhsearch': _hhr_columns,
            'hmmsearch': _hmmsearch_hits, 'mmseqs': _a3m_query}
