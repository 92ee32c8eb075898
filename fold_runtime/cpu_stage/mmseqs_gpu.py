"""--gpu with --msa-mode mmseqs2: ColabFold's search on MMseqs2-GPU, as `colabfold_search --gpu 1
--gpu-server 1` runs it (ColabFold 1.6.2, colabfold/mmseqs/search.py, and its README for the servers).

What changes from the CPU search: each `search` takes --gpu 1 --prefilter-mode 1 (the GPU's ungapped
prefilter, its only one, at full sensitivity: no -s and no --k-score) and --gpu-server 1; every other
command is the CPU search's. The databases keep their names; they must be padded for the GPU
(alphafold-data --gpu-dbs: setup_databases.sh's tsv2exprofiledb --gpu 1, which runs makepaddedseqdb).
While a run lasts, one `mmseqs gpuserver` per database (the command line of ColabFold's README) holds
it in GPU memory; the searches find it by the database's path.

require() refuses before any search: no GPU visible (EXIT_GPU), a database not padded, an MMseqs2
without GPU support (EXIT_MISSING: release 16 or later, built with CUDA; a CPU build's searches stop
with "compiled without CUDA support", which a one-sequence probe asks for first).
"""
import contextlib
import os
import subprocess
import tempfile

from kit_common import files, locks
from kit_common.errors import EXIT_GPU, EXIT_MISSING, KitError
from kit_common.gpus import visible_gpus
from kit_common.mmseqs_db import padded

SEARCH_PARAM = ['--gpu', '1', '--prefilter-mode', '1', '--gpu-server', '1']
SERVER_PARAM = ['--max-seqs', '10000', '--db-load-mode', '0', '--prefilter-mode', '1']
CPU_BUILD = 'compiled without CUDA support'   # what a CPU build says when asked to search on a GPU
_PROBE = 'MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ'
_FIX_BINARY = ('install a GPU build of MMseqs2 (release 16 or later, CUDA; the kit\'s CUDA 12 images have one) '
               'and pass it with --mmseqs-binary, or leave --gpu out to search on the CPUs')


def require(mmseqs, dbs):
    """Refuse --gpu unless a GPU is visible, every database in dbs (path prefixes) is padded and
    mmseqs searches on a GPU."""
    require_visible()
    unpadded = [db for db in dbs if not padded(db)]
    if unpadded:
        raise KitError('%s %s not padded for MMseqs2-GPU' % (', '.join(unpadded), 'is' if len(unpadded) == 1 else 'are'),
                       'prepare them for the GPU: alphafold-data sync --preset mmseqs2 --gpu-dbs (or [data] '
                       'gpu_dbs = true in the site config), or leave --gpu out', EXIT_MISSING)
    _require_gpu_build(mmseqs)


def require_visible():
    if not visible_gpus():
        raise KitError('--gpu searches with MMseqs2 on a GPU, and no GPU is visible here (CUDA_VISIBLE_DEVICES, '
                       'nvidia-smi -L)', 'run on a GPU node (a Slurm job with --gres=gpu:1, or the --nv container), '
                       'or leave --gpu out to search on the CPUs', EXIT_GPU)


def _require_gpu_build(mmseqs):
    help_text = _output([mmseqs, 'search', '-h'])[1]
    if '--gpu-server' not in help_text:
        raise KitError('%s has no GPU search (MMseqs2 before release 16)' % mmseqs, _FIX_BINARY, EXIT_MISSING)
    with tempfile.TemporaryDirectory(prefix='mmseqs-gpu-probe.') as work:
        probe = os.path.join(work, 'probe')
        with open(probe + '.fasta', 'w') as f:
            f.write('>probe\n%s\n' % _PROBE)
        for argv in (['createdb', probe + '.fasta', probe], ['makepaddedseqdb', probe, probe + '_pad'],
                     ['ungappedprefilter', probe + '_pad', probe + '_pad', probe + '_res', '--gpu', '1']):
            code, text = _output([mmseqs] + argv + ['-v', '1'])
            if code and CPU_BUILD in text:
                raise KitError('%s is a CPU build of MMseqs2: it says "MMseqs2 was %s"' % (mmseqs, CPU_BUILD),
                               _FIX_BINARY, EXIT_MISSING)
            if code:
                raise KitError('MMseqs2 could not search on the GPU (mmseqs %s: %s)'
                               % (argv[0], ' '.join(text.split())[-300:]),
                               'check the GPU (nvidia-smi) and CUDA_VISIBLE_DEVICES, or leave --gpu out', EXIT_GPU)


def _output(argv):
    res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    return res.returncode, res.stdout


@contextlib.contextmanager
def servers(mmseqs, dbs):
    """One `mmseqs gpuserver` per database while the block runs, its output in this process's
    stderr (the search's log); stopped with SIGTERM (it frees its shared memory then) at the end.
    A server's shared memory is named by its database's path, so this account's runs on one host
    (a batch's tasks, a complex's chains) take turns, under a lock in the temporary directory."""
    if not dbs:
        yield
        return
    turn = os.path.join(tempfile.gettempdir(), 'alphafold-mmseqs-gpu-%d' % os.getuid())
    files.make_dirs(turn)
    with locks.exclusive(turn, 'an MMseqs2-GPU search (gpuserver on %s)' % ', '.join(dbs)):
        started = [subprocess.Popen([mmseqs, 'gpuserver', db] + SERVER_PARAM, stdout=2) for db in dbs]
        try:
            yield
        finally:
            for server in started:
                if server.poll() is None:
                    server.terminate()
                server.wait()
