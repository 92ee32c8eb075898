"""The AlphaFold HPC kit's runtime: split CPU/GPU stages, batch mode.

Runs inside the legacy images too, so it must stay importable on Python 3.8.
"""
__version__ = '0.1.0'
