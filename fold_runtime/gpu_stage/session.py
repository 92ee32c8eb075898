"""What a GPU-stage process does once, before its targets: the memory policy (before jax starts:
XLA reads it once), the compile clock and cache, the GPU check, the data directory and the
weights. alphafold-predict and the batch GPU worker both start here."""
import logging

from fold_runtime import progress
from fold_runtime.gpu_stage import memory
from fold_runtime.options import resolve_data_dir
from kit_common.errors import EXIT_GPU, EXIT_MISSING, KitError

log = logging.getLogger(__name__)


class Session(object):
    """opts: GpuStageOptions; longest: the longest protein this process will predict; buckets:
    the length-bucket edges in force (() for none)."""

    def __init__(self, opts, longest, buckets=()):
        memory.apply(opts.memory_mode, longest, opts.mem_fraction, opts.unified_threshold)
        progress.configure(opts.progress_interval)
        from fold_runtime.compat import fidelity
        from fold_runtime.gpu_stage import jax_setup, predict
        fidelity.apply_model()   # DeepMind's numerics, before any key, model or relaxation
        self.opts, self.buckets = opts, tuple(buckets)
        self.clock = jax_setup.CompileClock()
        jax_setup.use_compilation_cache(opts.compile_cache_dir)
        gpus = self.gpus = jax_setup.gpu_count()
        if opts.require_gpu and not gpus:
            raise KitError('no GPU is visible to jax (--require-gpu)',
                           'run on a GPU node (e.g. sbatch --gres=gpu:1), check CUDA_VISIBLE_DEVICES, and '
                           'use the image variant for your CUDA driver', EXIT_GPU)
        self.use_gpu_relax = bool(gpus) if opts.use_gpu_relax is None else opts.use_gpu_relax
        self.data_dir = resolve_data_dir(opts.data_dir)
        if not self.data_dir:
            raise KitError('no data directory given for the weights', 'pass --data-dir or set ALPHAFOLD_DATA_DIR',
                           EXIT_MISSING)
        self.models = predict.Models(opts, self.data_dir)
