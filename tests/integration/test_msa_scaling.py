"""benchmarks/msa_scaling.py's HHblits database: the FASTA's sequences as one-sequence entries of
an HH-suite database that the real HHblits, run by AlphaFold's wrapper with DeepMind's flags,
searches (ffindex index sorted by name, each entry ending in a NUL, the cs219 part made)."""
import random
import sys

from conftest import ROOT

sys.path.insert(0, ROOT)
from benchmarks.msa_scaling import build_hhblits_db, msa_stats, planted, run_hhblits  # noqa: E402

HBB = ('MVHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKVKAHGKKVLGAFSDGLAHLDNLKGTFATLSELHCDKLHVDPENFRL'
       'LGNVLVCVLAHHFGKEFTPPVQAAYQKVVAGVANALAHKYH')


def test_hhblits_finds_the_planted_homologs_in_the_one_sequence_database(tmp_path):
    rng = random.Random(25)
    plants = {'plant_q0_id90_k0': 90, 'plant_q0_id70_k0': 70}
    records = [(name, planted(HBB, identity, rng)) for name, identity in plants.items()]
    records += [('bg%d' % i, ''.join(rng.choice('ACDEFGHIKLMNPQRSTVWY') for _ in range(140))) for i in range(40)]
    rng.shuffle(records)
    fasta = tmp_path / 'db.fasta'
    fasta.write_text(''.join('>%s\n%s\n' % r for r in records))
    prefix = build_hhblits_db(str(fasta), str(tmp_path))
    index = [line.split('\t') for line in open(prefix + '_a3m.ffindex').read().splitlines()]
    assert [name for name, _, _ in index] == sorted(name for name, _ in records)
    data = open(prefix + '_a3m.ffdata', 'rb').read()
    for name, offset, length in index:
        assert data[int(offset):int(offset) + int(length)].startswith(b'>' + name.encode() + b'\n')
        assert data[int(offset) + int(length) - 1:int(offset) + int(length)] == b'\0'
    found, depth, _ = msa_stats(run_hhblits('hhblits', prefix, HBB, 2, str(tmp_path)), plants, 0)
    assert found[90] == 1 and found[70] == 1
    assert depth == 3   # the query and the two planted homologs; no random sequence
