#!/usr/bin/env bash
# make demo: the main job end to end on small real data.
# Builds the real-data test databases, runs the CPU stage on the HPV E2 DNA-binding domain
# (real homologs; its own structure 1A7G is found and, as in DeepMind's pipeline, rejected as a
# near-duplicate of the query), then the GPU stage (on the CPU here) to ranked_0.pdb.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${DEMO_OUTPUT:-demo-output}
DB=$($PY tests/build_test_dbs.py | tail -n 1)
echo "== test databases: $DB"
echo "== AlphaFold weights: none can be downloaded here; generating STAND-IN RANDOM TEST WEIGHTS"
WEIGHTS=$($PY tests/make_test_weights.py | tail -n 1)
# One data directory, as a site has: databases plus params/.
DATA=$OUT/data
mkdir -p "$DATA"
for d in "$DB"/* "$WEIGHTS/params"; do ln -sfn "$d" "$DATA/$(basename "$d")"; done
export ALPHAFOLD_JAX_CACHE_DIR=${ALPHAFOLD_JAX_CACHE_DIR:-$HOME/.cache/alphafold-hpc-kit/jax-cache}

echo "== CPU stage: alphafold-msa (searches run concurrently)"
.venv/bin/alphafold-msa --fasta "$DB/targets/e2_dbd.fasta" --output-dir "$OUT" --data-dir "$DATA" --overwrite
echo "== GPU stage: alphafold-predict (relaxes only the best model)"
.venv/bin/alphafold-predict --fasta "$DB/targets/e2_dbd.fasta" --output-dir "$OUT" --data-dir "$DATA" \
  --model-preset monomer_ptm --models model_1,model_2
echo
echo "features:  $OUT/e2_dbd/features.pkl"
echo "structure: $OUT/e2_dbd/ranked_0.pdb and ranked_0.cif   (from RANDOM TEST WEIGHTS: the pipeline is real, the fold is not)"
echo "scores:    $OUT/e2_dbd/scores.json   (mean pLDDT, pTM, ranking confidence, recycles, seed per model)"
echo "plots:     $OUT/e2_dbd/plddt.png   (pLDDT per residue, one line per model)"
echo "           $OUT/e2_dbd/pae.png   (predicted aligned error of each model, pTM in the titles)"
echo "           $OUT/e2_dbd/msa_coverage.png   (MSA rows by identity to the query, coverage per position)"
echo "wall times (s), from $OUT/e2_dbd/timings.json:"
$PY -c 'import json,sys; t=json.load(open(sys.argv[1])); [print("  %-30s %7.2f" % kv) for kv in sorted(t.items())]' "$OUT/e2_dbd/timings.json"
