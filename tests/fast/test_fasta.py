"""Targets from FASTA files: monomers, and complexes (multimer) in AlphaFold's and ColabFold's notations."""
import pytest

from fold_runtime import fasta, options
from kit_common.errors import KitError


def target(tmp_path, text, multimer=True):
    path = tmp_path / 'cplx.fasta'
    path.write_text(text)
    return fasta.read_target(str(path), multimer)


def test_records_are_the_chains_in_file_order(tmp_path):
    t = target(tmp_path, '>a first\nMKVL\nAA\n>b\nGGS\n>a again\nMKVLAA\n')
    assert [(c.chain_id, c.description, c.sequence) for c in t.chains] == [
        ('A', 'a first', 'MKVLAA'), ('B', 'b', 'GGS'), ('C', 'a again', 'MKVLAA')]   # C: a homomer copy of A
    assert t.name == 'cplx' and t.sequence == 'MKVLAA:GGS:MKVLAA' and t.num_residues == 15


def test_colabfold_colon_notation_is_the_same_complex(tmp_path):
    t = target(tmp_path, '>pair\nmkvlaa:GGS\n')
    assert [(c.chain_id, c.description, c.sequence) for c in t.chains] == [('A', 'pair', 'MKVLAA'), ('B', 'pair', 'GGS')]
    assert t.sequence == 'MKVLAA:GGS'


def test_one_record_is_a_one_chain_complex_and_a_monomer_has_no_chains(tmp_path):
    assert [c.chain_id for c in target(tmp_path, '>m\nMKV\n').chains] == ['A']
    mono = target(tmp_path, '>m\nMKV\n', multimer=False)
    assert mono.chains == () and mono.num_residues == 3


@pytest.mark.parametrize('text, multimer, words', [
    ('>a\nMKV:\n', True, ['record ">a" chain 2 is empty']),
    ('>a\n:MKV\n', True, ['record ">a" chain 1 is empty']),
    ('>a\nMKV:AC1\n', True, ['record ">a" chain 2 has characters', "'1'", 'residue 3']),
    ('>a\nMKV:ACD\n>b\nMKV\n', True, ['mixes its two notations']),
    ('>a\nMKV:ACD\n', False, ["joins chains with ':'", '--model-preset multimer']),
    ('>a\nMKV\n>b\nACD\n', False, ['holds 2 sequences', '--model-preset multimer']),
    (''.join('>c%d\nMKV\n' % i for i in range(63)), True, ['63 chains', 'at most 62']),
])
def test_bad_complexes_say_what_and_how_to_fix(tmp_path, text, multimer, words):
    with pytest.raises(KitError) as err:
        target(tmp_path, text, multimer)
    for word in words:
        assert word in str(err.value) + err.value.fix, word


def test_chain_ids_are_alphafolds():
    from alphafold.common import protein
    assert fasta.CHAIN_IDS == protein.PDB_CHAIN_IDS


def test_model_preset_multimer_in_both_spellings():
    parser = options.cpu_stage_parser()
    for argv in (['--model-preset', 'multimer'], ['--model_preset=multimer']):
        args = parser.parse_args(['--fasta', 'x.fasta', '--output-dir', 'o'] + argv)
        assert options.cpu_options_from_args(args).multimer
    assert not options.cpu_options_from_args(parser.parse_args(['--fasta', 'x', '--output-dir', 'o'])).multimer
    with pytest.raises(KitError) as err:
        options.cpu_options({'model_preset': 'multimer', 'msa_paths': ('/x.a3m',)})
    assert '--msa' in str(err.value)
