"""The one site configuration file: data directories, node-local staging, Slurm settings,
memory policy and caches. The installer copies it to PREFIX/<version>/etc/site.conf, the
modulefile exports ALPHAFOLD_SITE_CONFIG and the values the runtime needs, and the runtime
reads the rest (batch partitions, feature cache) from here.
"""
import configparser
import os

DEFAULTS = {
    'data': {'shared_root': '/shared/alphafold', 'local_root': '', 'mirror': '', 'rsync_mirror': ''},
    'memory': {'mode': 'auto', 'unified_threshold': '1200', 'mem_fraction': ''},
    'slurm': {'cpu_partition': 'cpu', 'gpu_partition': 'gpu', 'account': '', 'qos': '',
              'cpus_per_task': '20', 'cpu_time': '12:00:00', 'gpu_time': '12:00:00',
              'cpu_mem': '64G', 'gpu_mem': '64G', 'max_concurrent_msa': '20', 'extra_sbatch': '',
              'gpu_cpus_per_task': '8', 'gpu_workers': '4'},
    'batch': {'length_buckets': ''},
    'cache': {'feature_cache': '', 'jax_cache': ''},
}


def load(path=None):
    """The site config as {section: {key: value}}, defaults filled in. Path: argument, else
    $ALPHAFOLD_SITE_CONFIG, else defaults only."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict(DEFAULTS)
    path = path or os.environ.get('ALPHAFOLD_SITE_CONFIG')
    if path:
        with open(path) as f:
            parser.read_file(f)
    return {s: dict(parser[s]) for s in parser.sections()}
