"""alphafold-batch screen's complexes and a multimer batch's inputs: which complexes, their chains,
names and FASTA files, and the errors that stop a screen before anything is written."""
import subprocess
import sys

import pytest

from conftest import ROOT
from fold_runtime.batch import inputs, screen

BAITS = '>b1 first bait\nMKTAYIAK\n>b2\nGSHMLEDP\n'
CANDIDATES = '>c1\nMVHLTPEE\n>c2\nPIAQIHIL\n>c3\nMVHLTPEE\n'


def lists(tmp_path):
    (tmp_path / 'baits.fa').write_text(BAITS)
    (tmp_path / 'cands.fa').write_text(CANDIDATES)
    return [str(tmp_path / 'baits.fa')], [str(tmp_path / 'cands.fa')]


def test_pulldown_pairs_each_bait_with_each_candidate(tmp_path):
    baits, cands = lists(tmp_path)
    made = screen.targets('pulldown', baits, cands, None, str(tmp_path / 'out'))
    assert [t.name for t in made] == ['b1__c1', 'b1__c2', 'b1__c3', 'b2__c1', 'b2__c2', 'b2__c3']
    assert [(c.chain_id, c.description, c.sequence) for c in made[0].chains] == [
        ('A', 'b1 first bait', 'MKTAYIAK'), ('B', 'c1', 'MVHLTPEE')]
    assert made[0].sequence == 'MKTAYIAK:MVHLTPEE'
    # c1 and c3 are one sequence: the same complex, which the batch runs once (a duplicate).
    assert len(inputs.units(made)) == 4
    screen.write(made)
    assert (tmp_path / 'out' / '.batch' / 'screen' / 'b2__c3.fasta').read_text() == '>b2\nGSHMLEDP\n>c3\nMVHLTPEE\n'


def test_all_vs_all_and_homo_oligomers(tmp_path):
    _, cands = lists(tmp_path)
    made = screen.targets('all-vs-all', None, cands, None, str(tmp_path))
    assert [t.name for t in made] == ['c1__c2', 'c1__c3', 'c2__c3']
    made = screen.targets('homo-oligomer', None, cands, 3, str(tmp_path))
    assert [t.name for t in made] == ['c1__x3', 'c2__x3', 'c3__x3']
    assert [c.chain_id for c in made[1].chains] == ['A', 'B', 'C'] and made[1].num_residues == 24


@pytest.mark.parametrize('mode, with_baits, copies, words', [
    ('pulldown', False, None, '--mode pulldown needs --baits and --candidates'),
    ('all-vs-all', True, None, '--baits is for pulldown'),
    ('homo-oligomer', False, None, 'needs --candidates and --copies N'),
    ('homo-oligomer', False, 1, 'N of 2 or more (got 1)'),
    ('pulldown', True, 2, '--copies is for --mode homo-oligomer'),
])
def test_a_screen_that_cannot_be_made_is_refused(tmp_path, mode, with_baits, copies, words):
    baits, cands = lists(tmp_path)
    with pytest.raises(Exception) as err:
        screen.targets(mode, baits if with_baits else None, cands, copies, str(tmp_path))
    assert words in str(err.value) and err.value.exit_code == 2


def test_screen_refuses_fasta_and_non_multimer_presets_before_any_work(tmp_path):
    baits, cands = lists(tmp_path)
    base = [sys.executable, '-m', 'fold_runtime', 'batch', 'screen', '--mode', 'pulldown', '--baits'] + baits + \
        ['--candidates'] + cands + ['--output-dir', str(tmp_path / 'out')]
    for extra, words in ((['--fasta', baits[0]], 'not --fasta'), (['--model-preset', 'monomer_ptm'],
                                                                  '--model-preset monomer_ptm is not multimer')):
        res = subprocess.run(base + extra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                             env={'PYTHONPATH': ROOT, 'PATH': '/usr/bin:/bin'})
        assert res.returncode == 2 and words in res.stdout and 'Traceback' not in res.stdout, res.stdout
    assert not (tmp_path / 'out').exists()


def test_multimer_batch_inputs_follow_alphafold_and_colabfold(tmp_path):
    """A file of records without ':' is one complex named after the file (AlphaFold); records with
    ':' are one complex each (ColabFold), and a record without ':' there is a one-chain complex."""
    (tmp_path / 'dimer.fa').write_text('>x\nMKTAYIAK\n>y\nGSHMLEDP\n')
    (tmp_path / 'colab.fa').write_text('>p1 pair\nMKTAYIAK:GSHMLEDP\n>single\nMVHLTPEE\n')
    made = inputs.read([str(tmp_path / 'dimer.fa'), str(tmp_path / 'colab.fa')], multimer=True)
    assert [(t.name, len(t.chains)) for t in made] == [('dimer', 2), ('p1', 2), ('single', 1)]
    assert made[0].sequence == made[1].sequence == 'MKTAYIAK:GSHMLEDP'
    assert len(inputs.units(made)) == 2           # the same chains in the same order: one unit
    assert [t.name for t in inputs.read([str(tmp_path / 'dimer.fa')])] == ['x', 'y']   # monomer batch
