"""alphafold-batch: many targets, deduplicated, with their state on disk, run by an executor
(local or Slurm) as bulk CPU stages and long-lived GPU workers."""
