"""Reading and checking targets: one FASTA file is one monomer target, named after the file."""
import os
from typing import List, NamedTuple

from kit_common.errors import EXIT_INPUT, KitError

# IUPAC protein letters. B, Z, U, O are mapped to X by AlphaFold's featurizer, as in stock runs.
AMINO_ACIDS = frozenset('ACDEFGHIKLMNPQRSTVWYXBZUO')


class Target(NamedTuple):
    name: str
    description: str   # the FASTA header line without '>'
    sequence: str
    fasta_path: str


def raw_records(text, source):
    """(description, sequence lines joined) pairs, as alphafold.data.parsers.parse_fasta reads them;
    stdlib only, so the host side of alphafold-batch can check inputs too."""
    records = []
    for line_no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith('>'):
            records.append([line[1:], []])
        elif line and not records:
            raise KitError('FASTA file %s: line %d comes before any header line' % (source, line_no),
                           'start the file with a header line such as ">my_protein"')
        elif line:
            records[-1][1].append(line)
    return [(description, ''.join(lines)) for description, lines in records]


def parse_records(text, source):
    """(description, sequence) pairs of a FASTA text; raises KitError on malformed input."""
    if not text.strip():
        raise KitError('FASTA file %s is empty' % source,
                       'give a file with one header line (>name) and its protein sequence')
    result = []
    for description, joined in raw_records(text, source):
        sequence = ''.join(joined.split()).upper()
        if not sequence:
            raise KitError('FASTA file %s: record ">%s" has no sequence' % (source, description),
                           'add the protein sequence below its header line')
        bad = sorted(set(sequence) - AMINO_ACIDS)
        if bad:
            pos = min(sequence.index(c) for c in bad) + 1
            raise KitError('FASTA file %s: record ">%s" has characters that are not amino acids: %s '
                           '(first at residue %d)' % (source, description, ' '.join(map(repr, bad)), pos),
                           'give a protein sequence in one-letter code (DNA/RNA and gaps are not accepted)')
        result.append((description, sequence))
    return result


def target_name(path):
    """AlphaFold names a target after its FASTA file's basename, without the extension."""
    return os.path.splitext(os.path.basename(path))[0]


def read_monomer_target(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise KitError('cannot read FASTA file %s: %s' % (path, exc.strerror),
                       'check the path given to --fasta', EXIT_INPUT)
    except UnicodeDecodeError:
        raise KitError('FASTA file %s is not a text file' % path, 'give a plain-text FASTA file')
    records = parse_records(text, path)
    if len(records) != 1:
        raise KitError('FASTA file %s holds %d sequences; a monomer target has exactly one'
                       % (path, len(records)),
                       'put each protein in its own FASTA file, or use alphafold-batch for a '
                       'multi-record FASTA')
    description, sequence = records[0]
    return Target(target_name(path), description, sequence, os.path.abspath(path))


def read_targets(paths) -> List[Target]:
    targets = [read_monomer_target(p) for p in paths]
    seen = {}
    for t in targets:
        if t.name in seen:
            raise KitError('two FASTA files give the same target name %r: %s and %s'
                           % (t.name, seen[t.name], t.fasta_path),
                           'rename one file: outputs go to <output-dir>/<file basename>/')
        seen[t.name] = t.fasta_path
    return targets
