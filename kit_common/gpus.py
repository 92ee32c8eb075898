"""Which GPUs this process may use: the one answer the batch's GPU workers and MMseqs2-GPU share."""
import os
import subprocess


def visible_gpus():
    """GPU indices from CUDA_VISIBLE_DEVICES, else nvidia-smi; [] on a CPU-only machine."""
    env = os.environ.get('CUDA_VISIBLE_DEVICES')
    if env is not None:
        return [d for d in env.split(',') if d.strip() and d.strip() != 'NoDevFiles']
    try:
        res = subprocess.run(['nvidia-smi', '-L'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True)
    except FileNotFoundError:
        return []
    return [str(i) for i, line in enumerate(res.stdout.splitlines()) if line.startswith('GPU ')]
