"""The README's job scripts on a real Slurm cluster: a CPU-stage job, then a GPU-stage job that
depends on it, both loading the installed module. GPUs are STAND-INs (GRES on /dev/tty*):
Slurm allocates one and sets CUDA_VISIBLE_DEVICES; the model runs on the CPU."""
import re

from conftest import GPU_ARGS

CPU_JOB = '''#!/bin/bash
#SBATCH -p cpu -c 2 -J alphafold-msa
. /usr/share/lmod/lmod/init/bash
module use {prefix}/modulefiles
module load alphafold
alphafold-msa --fasta {fasta} --output-dir {out}
'''
GPU_JOB = '''#!/bin/bash
#SBATCH -p gpu --gres=gpu:1 -c 1 -J alphafold-predict
. /usr/share/lmod/lmod/init/bash
module use {prefix}/modulefiles
module load alphafold
echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"
alphafold-predict --fasta {fasta} --output-dir {out} {gpu_args} --models-to-relax none
'''


def test_cpu_then_gpu_job_through_the_module(slurm, installed_kit, targets, tmp_path):
    out = tmp_path / 'out'
    fmt = dict(prefix=installed_kit, fasta=targets['conotoxin'], out=out, gpu_args=' '.join(GPU_ARGS))
    (tmp_path / 'cpu.sh').write_text(CPU_JOB.format(**fmt))
    (tmp_path / 'gpu.sh').write_text(GPU_JOB.format(**fmt))
    cpu = slurm.sbatch('-o', str(tmp_path / 'cpu.log'), str(tmp_path / 'cpu.sh'))
    gpu = slurm.sbatch('--dependency=afterok:%s' % cpu, '-o', str(tmp_path / 'gpu.log'), str(tmp_path / 'gpu.sh'))
    states = slurm.wait([cpu, gpu])
    cpu_log, gpu_log = (tmp_path / 'cpu.log').read_text(), (tmp_path / 'gpu.log').read_text()
    assert states == {cpu: 'COMPLETED', gpu: 'COMPLETED'}, cpu_log + gpu_log
    assert 'on 2 cpu' in cpu_log                       # --cpus defaulted to $SLURM_CPUS_PER_TASK
    assert re.search(r'CUDA_VISIBLE_DEVICES=\d', gpu_log)
    assert slurm.field(cpu, 'EndTime') <= slurm.field(gpu, 'StartTime')   # the GPU job waited
    assert (out / 'conotoxin' / 'ranked_0.pdb').exists()
