"""--msa: a precomputed MSA (A3M, the query first) that replaces the MSA searches.

Checked before any search runs, so a wrong file costs seconds, not a queue wait and hours of
searches: it must exist, parse as A3M with AlphaFold's own parser, hold aligned rows of the
query's length, and start with the target's own sequence (an MSA of another protein would give
features that look fine and predict nonsense). Standard library only: the host side of
alphafold-batch checks a batch's MSAs at submit.
"""
import os
import re

from fold_runtime import fasta
from kit_common import digests
from kit_common.errors import EXIT_INPUT, KitError

FILE_NAME = 'user_msa.a3m'   # its copy under msas/: the template search's input, kept with the results
# A3M rows: residue letters, '-' for deletions from the query and lowercase insertions (and '.').
ROW = re.compile(r'[A-Za-z.\-*]*')
FIX = 'give an A3M file (as HHblits or ColabFold write it) whose first sequence is the target\'s'


class UserMsa(object):
    """A checked A3M: its text (without HH-suite's leading '#' lines, which AlphaFold's parser
    cannot read) and the SHA-256 of the file as given, which features.meta.json records."""

    def __init__(self, path, given, text):
        self.path, self.text = path, text
        self.sha256 = digests.bytes_digest(given.encode('utf-8'))


def load(path, target):
    """The A3M at path, checked against target; a KitError (exit 2) naming the problem otherwise."""
    try:
        with open(path) as f:
            given = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise KitError('--msa %s cannot be read for %s: %s' % (path, target.name, exc), FIX, EXIT_INPUT)
    text = re.sub(r'\A(\s*#[^\n]*\n)*', '', given)    # ColabFold's A3M files start with '#<lengths>'
    if not text.lstrip().startswith('>'):
        raise KitError('--msa %s is not an A3M file: it does not start with a ">name" line' % path, FIX, EXIT_INPUT)
    descriptions, sequences = zip(*fasta.raw_records(text, '--msa ' + path))
    for sequence, description in zip(sequences, descriptions):
        if not ROW.fullmatch(sequence):
            raise KitError('--msa %s is not an A3M file: sequence %r holds characters other than letters and '
                           '"-"' % (path, description), FIX, EXIT_INPUT)
    aligned = [re.sub('[a-z.]', '', s) for s in sequences]   # what parse_a3m keeps of each row
    if aligned[0].upper() != target.sequence:
        raise KitError('--msa %s starts with %r, not with the sequence of target %s (%d residues, from %s)'
                       % (path, descriptions[0], target.name, len(target.sequence), target.fasta_path),
                       'give each --fasta target its own MSA, in the same order; ' + FIX, EXIT_INPUT)
    wrong = [d for d, s in zip(descriptions, aligned) if len(s) != len(target.sequence)]
    if wrong:
        raise KitError('--msa %s is not an A3M file: %d row(s) (first: %r) do not have the query\'s %d match '
                       'columns' % (path, len(wrong), wrong[0], len(target.sequence)), FIX, EXIT_INPUT)
    return UserMsa(path, given, text)


def load_all(paths, targets):
    """One checked MSA per target, or None for each when --msa was not given."""
    if not paths:
        return [None] * len(targets)
    if len(paths) != len(targets):
        raise KitError('--msa gives %d file(s) for %d target(s)' % (len(paths), len(targets)),
                       'give one A3M file per --fasta target, in the same order', EXIT_INPUT)
    return [load(path, target) for path, target in zip(paths, targets)]


def batch_path(msa_dir, target_name):
    return os.path.join(msa_dir, target_name + '.a3m')


def load_batch(msa_paths, targets):
    """alphafold-batch --msa DIR: {target name: checked MSA} from DIR/<target name>.a3m, every
    target's file checked at submit; {} when --msa was not given."""
    if not msa_paths:
        return {}
    if len(msa_paths) != 1 or not os.path.isdir(msa_paths[0]):
        raise KitError('alphafold-batch --msa takes one directory, not %s' % ' '.join(msa_paths),
                       'put one A3M file per target, named <target>.a3m, in a directory and pass --msa DIR',
                       EXIT_INPUT)
    msa_dir = msa_paths[0]
    missing = [t.name + '.a3m' for t in targets if not os.path.isfile(batch_path(msa_dir, t.name))]
    if missing:
        raise KitError('--msa %s has no MSA for %d of the %d targets: %s' % (
            msa_dir, len(missing), len(targets), ', '.join(missing[:10]) + (' ...' if len(missing) > 10 else '')),
            'name each A3M after its target: the record\'s first word in a multi-record FASTA file, the '
            'file name for a single-record file (characters other than letters, digits, ".", "_" and "-" '
            'become "_")', EXIT_INPUT)
    return {t.name: load(batch_path(msa_dir, t.name), t) for t in targets}
