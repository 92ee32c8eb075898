"""The shared layer of the AlphaFold HPC kit, used by fold_runtime, data_sync and installer alike.

Standard library only and importable on Python 3.8: it runs in the legacy images, on login nodes
without the kit's stack, and from root's cron.
"""
