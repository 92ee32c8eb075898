"""Command lines and inputs, without databases or models."""
from fold_runtime.cpu_stage.searches import split_cpus


def test_cpu_split_follows_alphafold_8_8_4():
    assert split_cpus(20) == [8, 8, 4]
    assert split_cpus(40) == [16, 16, 8]
    assert split_cpus(2) == [1, 1, 1]


def test_help_documents_options_and_exit_codes(kit):
    res = kit('msa', '--help')
    assert res.returncode == 0
    for word in ('--fasta', '--db-preset', '--cpus', '--serial', '--timeout', '--overwrite',
                 '--jackhmmer-binary', 'exit status'):
        assert word in res.stdout


def test_inputs_are_named_uniquely_and_deduplicated(tmp_path):
    from fold_runtime.batch import inputs as bi
    (tmp_path / 'one.fasta').write_text('>whatever\nMKV\n')
    (tmp_path / 'multi.fa').write_text('>x first\nMKV\n>X second\nACD\n>we/ird:name\nACD\n>x\nEEE\n')
    (tmp_path / 'notes.txt').write_text('not a FASTA file')
    targets = bi.read([str(tmp_path)])
    assert [t.name for t in targets] == ['x', 'X_2', 'we_ird_name', 'x_3', 'one']
    groups = bi.units(targets)
    assert {k: [t.name for t in v] for k, v in groups.items()} == {
        'x': ['x', 'one'], 'X_2': ['X_2', 'we_ird_name'], 'x_3': ['x_3']}
