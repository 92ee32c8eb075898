"""Reading and checking targets: one FASTA file is one target, named after the file.

A monomer target is one record. Under the multimer preset a file is one complex, as in AlphaFold:
its records are the chains in file order (identical sequences are homomer copies), or, in
ColabFold's notation, one record whose sequence joins the chains with ':'.
"""
import os
from typing import List, NamedTuple, Tuple

from kit_common.errors import EXIT_INPUT, KitError

# IUPAC protein letters. B, Z, U, O are mapped to X by AlphaFold's featurizer, as in stock runs.
AMINO_ACIDS = frozenset('ACDEFGHIKLMNPQRSTVWYXBZUO')
CHAIN_SEPARATOR = ':'   # ColabFold's: one record, its chains joined
# AlphaFold's chain ids in file order (alphafold.common.protein.PDB_CHAIN_IDS; here without
# importing AlphaFold, which login nodes may lack). Their number is the most chains AlphaFold takes.
CHAIN_IDS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
# The longest inputs each stage takes (docs/stages.md: "Length limits"), checked when the targets are read,
# before any search or model runs. CPU stage, per searched sequence (a complex: per chain): HHblits
# and HHsearch cut a longer query there without a word (HH-suite 3.3: a 40,000-residue query's A3M
# row holds 32,763), so the features would be a fragment's, and assembling them fails at the end.
MAX_SEARCH_RESIDUES = 32763
# GPU stage, per target (a complex: all its chains): AlphaFold's pair representation alone holds
# N^2 x 128 float32 values, 51 GB at 10,000 residues before the network's working copies, more than
# unified memory gives one GPU (--memory-mode auto turns it on above --unified-threshold residues).
MAX_MODEL_RESIDUES = 10000
SPLIT = 'split it into domains or overlapping fragments of at most %d residues, each its own target'


class Chain(NamedTuple):
    chain_id: str
    description: str
    sequence: str


class Target(NamedTuple):
    name: str
    description: str   # the FASTA header line without '>' (a complex: its first record's)
    sequence: str      # a complex: its chains' sequences joined with ':', in order
    fasta_path: str
    chains: Tuple[Chain, ...] = ()   # a complex's chains in order; () for a monomer

    @property
    def num_residues(self):
        return sum(len(c.sequence) for c in self.chains) if self.chains else len(self.sequence)


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


def parse_records(text, source, complexes=False):
    """(description, sequence) pairs of a FASTA text; raises KitError on malformed input.
    complexes: a sequence may join chains with ':' (ColabFold's notation), each checked."""
    if not text.strip():
        raise KitError('FASTA file %s is empty' % source,
                       'give a file with one header line (>name) and its protein sequence')
    result = []
    for description, joined in raw_records(text, source):
        sequence = ''.join(joined.split()).upper()
        if not sequence:
            raise KitError('FASTA file %s: record ">%s" has no sequence' % (source, description),
                           'add the protein sequence below its header line')
        if CHAIN_SEPARATOR in sequence and not complexes:
            raise KitError('FASTA file %s: record ">%s" joins chains with \':\' (ColabFold\'s notation for a '
                           'complex)' % (source, description),
                           'pass --model-preset multimer to predict it as a complex, or remove the \':\'')
        chains = sequence.split(CHAIN_SEPARATOR)
        for number, chain in enumerate(chains, 1):
            _check_chain(chain, source, description, number if len(chains) > 1 else None)
        result.append((description, sequence))
    return result


def _check_chain(sequence, source, description, number):
    """number: the chain's position in a ':'-joined record, None for a whole record."""
    where = 'record ">%s"' % description + (' chain %d' % number if number else '')
    if not sequence:
        raise KitError('FASTA file %s: %s is empty' % (source, where),
                       'give each chain a sequence: no leading, trailing or doubled \':\'')
    bad = sorted(set(sequence) - AMINO_ACIDS)
    if bad:
        pos = min(sequence.index(c) for c in bad) + 1
        raise KitError('FASTA file %s: %s has characters that are not amino acids: %s (first at residue %d)'
                       % (source, where, ' '.join(map(repr, bad)), pos),
                       'give a protein sequence in one-letter code (DNA/RNA and gaps are not accepted)')


def target_name(path):
    """AlphaFold names a target after its FASTA file's basename, without the extension."""
    return os.path.splitext(os.path.basename(path))[0]


def read_target(path, multimer=False):
    """The target of one FASTA file: a monomer, or with multimer a complex (Target.chains)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise KitError('cannot read FASTA file %s: %s' % (path, exc.strerror),
                       'check the path given to --fasta', EXIT_INPUT)
    except UnicodeDecodeError:
        raise KitError('FASTA file %s is not a text file' % path, 'give a plain-text FASTA file')
    records = parse_records(text, path, complexes=multimer)
    if multimer:
        return complex_target(target_name(path), records, os.path.abspath(path))
    if len(records) != 1:
        raise KitError('FASTA file %s holds %d sequences; a monomer target has exactly one'
                       % (path, len(records)),
                       'pass --model-preset multimer to predict them as one complex, put each protein in its own '
                       'FASTA file, or use alphafold-batch for a multi-record FASTA')
    description, sequence = records[0]
    return Target(target_name(path), description, sequence, os.path.abspath(path))


def complex_target(name, records, source):
    """A complex from checked records: several records are its chains; one record is split at ':'."""
    if len(records) > 1 and any(CHAIN_SEPARATOR in s for _, s in records):
        raise KitError('FASTA file %s mixes its two notations for a complex: several records, and \':\' within '
                       'a record' % source, 'give one record per chain, or one record with the chains joined by '
                       '\':\'')
    if len(records) == 1:
        description, joined = records[0]
        records = [(description, s) for s in joined.split(CHAIN_SEPARATOR)]
    if len(records) > len(CHAIN_IDS):
        raise KitError('FASTA file %s holds %d chains; AlphaFold takes at most %d (the PDB format\'s chain ids)'
                       % (source, len(records), len(CHAIN_IDS)), 'split the complex into smaller ones')
    chains = tuple(Chain(i, d, s) for i, (d, s) in zip(CHAIN_IDS, records))
    return Target(name, records[0][0], CHAIN_SEPARATOR.join(c.sequence for c in chains), source, chains)


def check_lengths(targets, search=False, model=False):
    """A KitError (exit 2) for a target over the limit of a stage that will run: search (the CPU
    stage), model (the GPU stage)."""
    for t in targets:
        for seq in (t.chains or (t,)) if search else ():
            if len(seq.sequence) > MAX_SEARCH_RESIDUES:
                what = 'chain %s of %s' % (seq.chain_id, t.name) if t.chains else 'target %s' % t.name
                raise KitError('FASTA file %s: %s has %d residues; the CPU stage searches at most %d per sequence '
                               '(HHblits and HHsearch cut a longer query there without a word)'
                               % (t.fasta_path, what, len(seq.sequence), MAX_SEARCH_RESIDUES),
                               SPLIT % MAX_SEARCH_RESIDUES, EXIT_INPUT)
        if model:
            check_model_length(t.name, t.num_residues, 'FASTA file ' + t.fasta_path)


def check_model_length(name, length, source):
    if length > MAX_MODEL_RESIDUES:
        raise KitError('%s: target %s has %d residues; the GPU stage predicts at most %d per target (AlphaFold\'s '
                       'pair representation alone is 51 GB at 10,000 residues)' % (source, name, length,
                                                                                  MAX_MODEL_RESIDUES),
                       SPLIT % MAX_MODEL_RESIDUES, EXIT_INPUT)


def read_targets(paths, multimer=False) -> List[Target]:
    targets = [read_target(p, multimer) for p in paths]
    seen = {}
    for t in targets:
        if t.name in seen:
            raise KitError('two FASTA files give the same target name %r: %s and %s'
                           % (t.name, seen[t.name], t.fasta_path),
                           'rename one file: outputs go to <output-dir>/<file basename>/')
        seen[t.name] = t.fasta_path
    return targets
