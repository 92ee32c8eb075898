"""The AlphaFold HPC kit's runtime: the CPU stage (cpu_stage/), the GPU stage (gpu_stage/) and
batch mode (batch/), with the command lines (cli.py) and their typed options (options.py).

Runs inside the legacy images too, so it must stay importable on Python 3.8.
"""
__version__ = '0.1.0'
ALPHAFOLD_DISTRIBUTIONS = ('alphafold', 'alphafold-colabfold')   # DeepMind's, ColabFold's fork


def distribution():
    """(distribution name, version) of the installed AlphaFold, ('', '') when unknown; read from
    its metadata, without importing it."""
    from importlib import metadata
    for dist in ALPHAFOLD_DISTRIBUTIONS:
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return '', ''


def version_text():
    """What --version prints: the kit, its variant and the AlphaFold it runs."""
    import os
    dist, version = distribution()
    return 'alphafold-hpc-kit %s (variant %s; AlphaFold: %s)' % (
        __version__, os.environ.get('ALPHAFOLD_KIT_VARIANT') or 'development',
        '%s %s' % (dist, version) if dist else 'not installed')
