"""The sharded search's gather (fold_runtime/cpu_stage/sharded.py): the records it copies from a
shard for the second pass are exactly those whose HMMER name (the header's first word) was
reported, whatever the FASTA's line layout, and whatever else the names match as text."""
from fold_runtime.cpu_stage import sharded

SHARD = (b'>V1_2 a name that begins longer ones\nACDEFG\nHIKLMN\n'
         b'>V1_20\nPQRST\n'
         b'> SPACED name after a space\nVWY\n'
         b'>\tTABBED\nAAAA\nCCCC\nDDDD\n'
         b'>OTHER mentions >V1_2 and V1_20 in its description\nEEEE\n'
         b'>ACDEFG a name that is also a stretch of sequence\nGGGG\n'
         b'>\n'
         b'>LAST\nKKKK')


def by_lines(shard, names):
    """The rule, one line at a time: a record is copied when its header's first word is in names."""
    out, keep = [], False
    for line in shard.splitlines(keepends=True):
        if line.startswith(b'>'):
            words = line[1:].split(None, 1)
            keep = bool(words) and words[0] in names
        if keep:
            out.append(line)
    return b''.join(out)


def gathered(tmp_path, names):
    shard, out = tmp_path / 'db.fasta.shard-1-of-2', tmp_path / 'hits.fasta'
    shard.write_bytes(SHARD)
    count = sharded._copy_records(str(shard), names, str(out))
    return count, out.read_bytes()


def test_the_named_records_are_copied_whole_and_in_order(tmp_path):
    names = {b'V1_20', b'SPACED', b'TABBED', b'ACDEFG', b'LAST'}
    count, text = gathered(tmp_path, names)
    assert text == by_lines(SHARD, names)
    assert count == 5
    assert text.startswith(b'>V1_20\nPQRST\n> SPACED') and text.endswith(b'>LAST\nKKKK')
    assert b'>\tTABBED\nAAAA\nCCCC\nDDDD\n' in text


def test_a_name_found_only_inside_other_lines_copies_nothing_else(tmp_path):
    count, text = gathered(tmp_path, {b'V1_2'})
    assert (count, text) == (1, b'>V1_2 a name that begins longer ones\nACDEFG\nHIKLMN\n')


def test_no_names_leave_an_empty_file_and_unknown_names_copy_nothing(tmp_path):
    assert gathered(tmp_path, set()) == (0, b'')
    assert gathered(tmp_path, {b'ABSENT'}) == (0, b'')
