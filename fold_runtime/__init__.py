"""The AlphaFold HPC kit's runtime: the CPU stage (cpu_stage/), the GPU stage (gpu_stage/) and
batch mode (batch/), with the command lines (cli.py) and their typed options (options.py).

Runs inside the legacy images too, so it must stay importable on Python 3.8.
"""
__version__ = '0.1.0'
