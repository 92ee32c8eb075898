"""alphafold-batch screen: the complexes of an interaction screen, made from lists of proteins.

pulldown: each bait with each candidate (bait chain A, candidate chain B); all-vs-all: every pair
of one list, in list order; homo-oligomer: each protein in --copies copies. The complexes run as
any multimer batch, so each unique chain's searches run once (n + m of them for n baits and m
candidates, where one AlphaFold run per pair searches 2·n·m chains), and summary.csv ranks them
by ipTM. Each complex's FASTA file is written under <out>/.batch/screen/ for reruns by hand.
"""
import itertools
import os

from fold_runtime import fasta
from fold_runtime.batch import inputs, state
from kit_common import files
from kit_common.errors import EXIT_INPUT, KitError

JOIN = '__'   # between the proteins' names in a complex's name


def proteins(paths):
    """(name, description, sequence) of every record of the FASTA files (or directories) given."""
    found, used = [], set()
    for path in inputs.fasta_files(paths or ()):
        records = inputs.read_records(path)
        found += [(inputs.unique_name(inputs.record_name(path, records, d), used), d, s) for d, s in records]
    return found


def combinations(mode, baits, candidates, copies):
    """The screen's complexes as lists of proteins, in a stable order."""
    if mode == 'pulldown':
        return [[b, c] for b in baits for c in candidates]
    if mode == 'all-vs-all':
        return [list(pair) for pair in itertools.combinations(candidates, 2)]
    return [[p] * copies for p in candidates]


def check(mode, baits, candidates, copies):
    fix = 'see alphafold-batch screen --help'
    if mode == 'pulldown' and not (baits and candidates):
        raise KitError('--mode pulldown needs --baits and --candidates', fix, EXIT_INPUT)
    if mode != 'pulldown' and baits:
        raise KitError('--mode %s takes one list, --candidates; --baits is for pulldown' % mode, fix, EXIT_INPUT)
    if mode == 'all-vs-all' and len(candidates) < 2:
        raise KitError('--mode all-vs-all needs at least two --candidates, got %d' % len(candidates), fix, EXIT_INPUT)
    if mode == 'homo-oligomer' and (not candidates or copies is None or copies < 2):
        raise KitError('--mode homo-oligomer needs --candidates and --copies N, N of 2 or more (got %s)' % copies,
                       fix, EXIT_INPUT)
    if mode != 'homo-oligomer' and copies is not None:
        raise KitError('--copies is for --mode homo-oligomer', fix, EXIT_INPUT)


def targets(mode, bait_paths, candidate_paths, copies, out):
    """The screen's complexes as fasta.Targets whose FASTA files are to be written by write()."""
    baits, candidates = proteins(bait_paths), proteins(candidate_paths)
    check(mode, baits, candidates, copies)
    made, used = [], set()
    for members in combinations(mode, baits, candidates, copies):
        base = JOIN.join(p[0] for p in members) if mode != 'homo-oligomer' else '%s%sx%d' % (members[0][0], JOIN,
                                                                                           copies)
        name = inputs.unique_name(base, used)
        path = state.batch_dir(out, 'screen', name + '.fasta')
        made.append(fasta.complex_target(name, [(d, s) for _, d, s in members], path))
    return made


def write(targets):
    """Each complex's FASTA file (its chains as records), for the record and for reruns by hand."""
    for t in targets:
        files.make_dirs(os.path.dirname(t.fasta_path))
        files.write_text(t.fasta_path, ''.join('>%s\n%s\n' % (c.description, c.sequence) for c in t.chains))
