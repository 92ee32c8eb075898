#!/usr/bin/env bash
# make demo: the main job end to end on small real data.
# Builds the real-data test databases, then runs the CPU stage on the HPV E2 DNA-binding domain.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${DEMO_OUTPUT:-demo-output}
DATA=$($PY tests/build_test_dbs.py | tail -n 1)
TARGET=$DATA/targets/e2_dbd.fasta
echo "== test databases: $DATA"
echo "== CPU stage: alphafold-msa (searches run concurrently)"
.venv/bin/alphafold-msa --fasta "$TARGET" --output-dir "$OUT" --data-dir "$DATA" --overwrite
echo
echo "features: $OUT/e2_dbd/features.pkl"
echo "per-search wall times (s), from $OUT/e2_dbd/timings.json:"
$PY -c 'import json,sys; t=json.load(open(sys.argv[1])); [print("  %-22s %7.2f" % kv) for kv in sorted(t.items())]' "$OUT/e2_dbd/timings.json"
