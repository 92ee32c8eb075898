"""Database download, verification, versioning and node-local staging for the AlphaFold HPC kit."""
