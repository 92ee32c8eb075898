"""A batch's targets: multi-record FASTA files and/or directories of FASTA files, turned into
sanitised unique names, and grouped by sequence so identical sequences share one CPU stage and
one prediction (each name still gets its own output directory)."""
import os
import re
from collections import OrderedDict

from fold_runtime import fasta, meta
from kit_common.errors import EXIT_INPUT, KitError

FASTA_SUFFIXES = ('.fa', '.fasta', '.faa', '.fas', '.fsa')
MAX_NAME = 80


def fasta_files(paths):
    """The FASTA files named, and those (by suffix, sorted) in the directories named."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(FASTA_SUFFIXES))
            if not found:
                raise KitError('directory %s holds no FASTA files (%s)' % (path, ', '.join(FASTA_SUFFIXES)),
                               'point --fasta at FASTA files or a directory of them', EXIT_INPUT)
            files.extend(found)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise KitError('input %s does not exist' % path, 'check the paths given to --fasta', EXIT_INPUT)
    return files


def sanitise(text):
    """A safe directory and job name: letters, digits, '.', '_' and '-' only."""
    name = re.sub(r'[^A-Za-z0-9._-]+', '_', text).strip('._-')[:MAX_NAME]
    return name or 'target'


def unique_name(base, used):
    """sanitise(base), with _2, _3, ... when used (a set it is added to) holds it already."""
    name = unique = sanitise(base)
    n = 1
    while unique.lower() in used:   # case-insensitive: file systems may fold case
        n += 1
        unique = '%s_%d' % (name, n)
    used.add(unique.lower())
    return unique


def read(paths, multimer=False):
    """Targets of every input, made unique with _2, _3, ... Monomers: one per record, named after
    the record's first word (a single-record file: after the file, as AlphaFold does). multimer:
    a file is one complex of its records (AlphaFold's convention, named after the file), unless
    its records join chains with ':' (ColabFold's): then each record is one complex."""
    targets, used = [], set()
    for path in fasta_files(paths):
        records = read_records(path, multimer)
        for base, target in _targets(path, records, multimer):
            targets.append(target._replace(name=unique_name(base, used)))
    if not targets:
        raise KitError('no targets given', 'pass --fasta with FASTA files or directories')
    return targets


def read_records(path, multimer=False):
    """A FASTA file's checked (description, sequence) records; a KitError if it cannot be read."""
    try:
        with open(path) as f:
            return fasta.parse_records(f.read(), path, complexes=multimer)
    except (OSError, UnicodeDecodeError) as exc:
        raise KitError('cannot read FASTA file %s: %s' % (path, exc), 'give plain-text FASTA files', EXIT_INPUT)


def record_name(path, records, description):
    """A record's name before sanitising: its first word, or the file's name for a one-record file."""
    return fasta.target_name(path) if len(records) == 1 else (description.split() or [''])[0]


def _targets(path, records, multimer):
    """(name to make unique, target) pairs of one file's records."""
    source = os.path.abspath(path)
    if multimer and not any(fasta.CHAIN_SEPARATOR in s for _, s in records):
        return [(fasta.target_name(path), fasta.complex_target('', records, source))]
    named = [(record_name(path, records, d), d, s) for d, s in records]
    if multimer:
        return [(base, fasta.complex_target('', [(d, s)], source)) for base, d, s in named]
    return [(base, fasta.Target('', d, s, source)) for base, d, s in named]


def units(targets, msas=None):
    """{primary name: [target, duplicates...]}: one unit per distinct sequence (and --msa file, whose
    features differ), in input order."""
    by_content = OrderedDict()
    for t in targets:
        msa = (msas or {}).get(t.name)
        by_content.setdefault((meta.sequence_sha256(t.sequence), msa.sha256 if msa else None), []).append(t)
    return OrderedDict((unit[0].name, unit) for unit in by_content.values())
