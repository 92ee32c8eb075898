#!/usr/bin/env bash
# AlphaFold HPC kit wrapper, installed as alphafold-msa, -predict, -run, -batch and -data.
# Runs the kit's entry point in the installed Apptainer image (GPU stages with --nv) or directly
# in the installed conda/venv environment. Needs no host Python.
set -euo pipefail
self=$(readlink -f "${BASH_SOURCE[0]}")
vdir=$(dirname "$(dirname "$self")")
# KIT_METHOD (apptainer|conda|venv) and KIT_RUNTIME (image file or environment directory)
source "$vdir/etc/runtime.env"
cmd=$(basename "$0")
case "$cmd" in
  alphafold-msa)     entry=(-m fold_runtime msa);     gpu=0 ;;
  alphafold-predict) entry=(-m fold_runtime predict); gpu=1 ;;
  alphafold-run)     entry=(-m fold_runtime run);     gpu=1 ;;
  alphafold-batch)   entry=(-m fold_runtime batch)    # GPU workers: in job scripts and local runs
                     case "${1:-}" in gpu-worker|submit|retry) gpu=1 ;; *) gpu=0 ;; esac ;;
  alphafold-data)    entry=(-m data_sync);            gpu=0 ;;
  *) echo "alphafold wrapper: unknown command name '$cmd'" >&2; exit 2 ;;
esac
# Batch job scripts call the kit through these wrappers, in or out of the image.
export ALPHAFOLD_KIT_BIN="$vdir/bin"
die() { printf '%s: error: %s\n  fix: %s\n' "$cmd" "$1" "$2" >&2; exit 3; }

if [ "$KIT_METHOD" != apptainer ]; then
  [ -x "$KIT_RUNTIME/bin/python" ] || die "environment $KIT_RUNTIME is missing" "reinstall: make install"
  exec "$KIT_RUNTIME/bin/python" "${entry[@]}" "$@"
fi

image=${ALPHAFOLD_IMAGE:-$KIT_RUNTIME}
command -v apptainer >/dev/null 2>&1 ||
  die "apptainer not found on PATH" "module load apptainer (or singularity), or install the kit with METHOD=conda or venv"
[ -f "$image" ] || die "image $image not found" "set ALPHAFOLD_IMAGE or reinstall: make install METHOD=apptainer"

# Bind what the command reads and writes: databases read-only, the output and working
# directories and $TMPDIR read-write.
binds=()
bind() { [ -n "$1" ] && [ -e "$1" ] && binds+=(--bind "$1:$1${2:+:$2}") || true; }
data_dirs=("${ALPHAFOLD_DATA_DIR:-}")
out_dirs=()
prev=
for arg in "$@"; do
  case "$prev" in
    --data-dir|--data_dir) data_dirs+=("$arg") ;;
    --output-dir|--output_dir|--target-dir|--target_dir) out_dirs+=("$arg") ;;
  esac
  case "$arg" in
    --data-dir=*|--data_dir=*) data_dirs+=("${arg#*=}") ;;
    --output-dir=*|--output_dir=*|--target-dir=*|--target_dir=*) out_dirs+=("${arg#*=}") ;;
  esac
  # alphafold-batch names its batch directory as an argument (status OUT, gpu-worker OUT, ...)
  [ "$cmd" = alphafold-batch ] && [ -d "$arg" ] && out_dirs+=("$arg")
  prev=$arg
done
for d in "${data_dirs[@]}"; do bind "$d" ro; done
for d in "${out_dirs[@]+"${out_dirs[@]}"}"; do mkdir -p "$d"; bind "$(readlink -f "$d")"; done
bind "$PWD"
bind "${TMPDIR:-/tmp}"

# A clean environment inside, plus what the job needs: Slurm, GPU selection and the kit's settings.
for name in $(compgen -e); do
  case "$name" in
    SLURM_*|CUDA_VISIBLE_DEVICES|ALPHAFOLD_*|XLA_*|TF_*|TMPDIR) export "APPTAINERENV_$name=${!name}" ;;
  esac
done
nv=()
[ "$gpu" = 1 ] && nv=(--nv)
exec apptainer exec --cleanenv "${nv[@]+"${nv[@]}"}" "${binds[@]}" "$image" python "${entry[@]}" "$@"
