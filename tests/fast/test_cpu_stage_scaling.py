"""benchmarks/cpu_stage_scaling.py's database, drawn in blocks of records: the same bytes for the
same seed, the asked number of records across block boundaries, real ones first."""
import sys

from conftest import ROOT

sys.path.insert(0, ROOT)
from benchmarks.cpu_stage_scaling import make_database  # noqa: E402

REAL = '>real1\nMVHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKVKAHGKKVLGAF\n>real2\nMKTAYIAKQRQISFVKSHFSRQ\n'


def records(path):
    with open(str(path)) as f:
        return [r.split('\n', 1) for r in f.read().split('>')[1:]]


def test_the_database_is_reproducible_and_holds_the_asked_records_across_blocks(tmp_path):
    real = tmp_path / 'real.fasta'
    real.write_text(REAL)
    made = []
    for name in ('a', 'b'):
        assert make_database(str(tmp_path / name), str(real), 2500, 0.1, block=1000) == 2500
        made.append((tmp_path / name).read_bytes())
    assert made[0] == made[1]
    got = records(tmp_path / 'a')
    assert len(got) == 2500 and [r[0] for r in got[:2]] == ['real1', 'real2']
    assert [r[0][1:] for r in got[2:]] == [str(i) for i in range(2498)]   # none lost or repeated at a block's end
    randoms = [seq.strip() for name, seq in got[2:] if name.startswith('R')]
    homologs = [seq.strip() for name, seq in got[2:] if name.startswith('H')]
    assert 150 < len(homologs) < 350 and all(50 <= len(s) <= 500 for s in randoms)
    assert make_database(str(tmp_path / 'd'), str(real), 2500, 0.1, seed=27) and \
        (tmp_path / 'd').read_bytes() != made[0]
