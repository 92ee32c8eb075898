#!/bin/bash
# Slurm Prolog fragment: make sure this node's copy of the AlphaFold databases is current before
# an AlphaFold job starts. Cheap when nothing changed (rsync hard-links unchanged files).
# In slurm.conf: Prolog=/etc/slurm/prolog.d/*  ; jobs opt in with --comment=alphafold or a feature.
export ALPHAFOLD_SITE_CONFIG=/opt/alphafold/0.1.0/cuda12/etc/site.conf
case "${SLURM_JOB_COMMENT:-}" in
  *alphafold*) flock -w 3600 /run/alphafold-stage.lock /opt/alphafold/0.1.0/cuda12/bin/alphafold-data stage --quiet ;;
esac
exit 0
