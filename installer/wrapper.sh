#!/usr/bin/env bash
# AlphaFold HPC kit wrapper, installed as alphafold-msa, -predict, -run, -batch and -data.
# Runs the kit's entry point in the installed Apptainer image (GPU stages with --nv) or directly
# in the installed conda/venv environment. Needs no host Python, except where an Apptainer
# install's alphafold-batch talks to Slurm: that part runs on the host (see host_batch below).
set -euo pipefail
self=$(readlink -f "${BASH_SOURCE[0]}")
vardir=$(dirname "$(dirname "$self")")     # PREFIX/<version>/<variant>
# KIT_METHOD (apptainer|conda|venv), KIT_RUNTIME (image file or environment directory), KIT_VARIANT
source "$vardir/etc/runtime.env"
cmd=$(basename "$0")
sub=${1:-}
case "$cmd" in   # rendered at install from kit_common/commands.py
@{commands}
  *) echo "alphafold wrapper: unknown command name '$cmd'" >&2; exit @{exit_input} ;;
esac
# Batch job scripts call the kit through these wrappers, in or out of the image.
export ALPHAFOLD_KIT_BIN="$vardir/bin" ALPHAFOLD_KIT_VARIANT="${KIT_VARIANT:-}"
# This install's site config, unless the module or the user names one.
if [ -z "${ALPHAFOLD_SITE_CONFIG:-}" ] && [ -f "$vardir/etc/site.conf" ]; then
  export ALPHAFOLD_SITE_CONFIG="$vardir/etc/site.conf"
fi
die() {  # die PROBLEM FIX [STATUS]: the kit's error form; the status from kit_common/errors.py, rendered
  printf '%s: error: %s\n  fix: %s\n' "$cmd" "$1" "$2" >&2; exit "${3:-@{exit_missing}}"
}

if [ "$KIT_METHOD" != apptainer ]; then
  [ -x "$KIT_RUNTIME/bin/python" ] || die "environment $KIT_RUNTIME is missing" "reinstall: make install"
  # The environment's tools first (conda's jackhmmer, hhblits, kalign2), and conda's CUDA libraries:
  # what methods.py's prepend() says, which check-install uses (tests/fast/test_install_methods.py).
  export PATH="$KIT_RUNTIME/bin${PATH:+:$PATH}"
  if [ "$KIT_METHOD" = conda ]; then export LD_LIBRARY_PATH="$KIT_RUNTIME/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
  exec "$KIT_RUNTIME/bin/python" "${entry[@]}" "$@"
fi

# --- What the command reads and writes, bound into the image at the same absolute path ---
declare -A bind_mode=()   # path -> ro or rw (rw wins)

absolute() {  # lexically normalised, symlinks kept: the path works inside exactly as given
  case "$1" in /*) realpath -ms -- "$1" ;; *) realpath -ms -- "$PWD/$1" ;; esac
}
bindable() {  # Apptainer's --bind src:dst:opts,... splits at ',' and ':': refuse, never mangle
  case "$1" in *,*|*:*)
    die "cannot bind '$1' into the image: Apptainer's --bind splits paths at ',' and ':'" \
        "rename it, or pass a path without ',' or ':' (e.g. a symlink to it)" @{exit_input} ;;
  esac
}
want() {  # want ro|rw PATH: bind PATH (absolute) if it exists
  local path
  [ -n "$2" ] || return 0
  path=$(absolute "$2")
  bindable "$path"
  [ -e "$path" ] || return 0
  [ "${bind_mode[$path]:-}" = rw ] || bind_mode[$path]=$1
}
want_made() {  # want_made PATH: a directory the command writes and would create
  [ -n "$1" ] || return 0
  bindable "$(absolute "$1")"
  mkdir -p -- "$(absolute "$1")"
  want rw "$1"
}
want_nearest() {  # want_nearest PATH: a data root the command may create: it, else its nearest existing parent
  local path
  [ -n "$1" ] || return 0
  path=$(absolute "$1")
  bindable "$path"
  while [ ! -e "$path" ] && [ "$path" != / ]; do path=$(dirname -- "$path"); done
  [ "$path" = / ] || want rw "$path"
}
want_cache() {  # want_cache PATH: jax creates its cache directory, and only warns when it cannot: so does this
  [ -n "$1" ] || return 0
  bindable "$(absolute "$1")"
  mkdir -p -- "$1" 2>/dev/null || true
  want rw "$1"
}
want_fasta() {  # --fasta a.fa dir/ or --fasta_paths=a.fa,b.fa: each file's directory (or the directory), read-only
  local rest="$1," path
  while [ -n "$rest" ]; do
    path=${rest%%,*}
    rest=${rest#*,}
    [ -n "$path" ] || continue
    if [ -d "$path" ]; then want ro "$path"; else want ro "$(dirname -- "$(absolute "$path")")"; fi
  done
}
want_rw() { want rw "$1"; }
want_ro() { want ro "$1"; }

# Options by name, in both spellings (--opt value, --opt=value; dashes or AlphaFold's underscores).
data_dirs=() made=() batch_dirs=()
@{path_variables}
option() {  # option NAME VALUE: note what a path option names; status 1 for any other option
  case "${1//_/-}" in   # rendered at install from fold_runtime/ and data_sync/option_table.py
@{path_options}
    *) return 1 ;;
  esac
}
positional() {  # alphafold-batch names its batch directory as an argument (status OUT, gpu-worker OUT, ...)
  if [ "$cmd" = alphafold-batch ] && [ -d "$1" ]; then
    want rw "$1"
    batch_dirs+=("$(absolute "$1")")
  fi
}
opt=''
for arg in "$@"; do
  case "$arg" in
    --*=*) option "${arg%%=*}" "${arg#*=}" || true; opt='' ;;
    -*) opt=$arg
        case "${arg//_/-}" in @{gpu_options}) gpu=1 ;; esac ;;   # e.g. alphafold-msa --gpu: MMseqs2-GPU
    *) if [ -n "$opt" ] && option "$opt" "$arg"; then
         case "${opt//_/-}" in @{list_options}) ;; *) opt='' ;; esac   # lists
       else
         opt=''
         positional "$arg"
       fi ;;
  esac
done

# --- alphafold-batch and Slurm: the image has no sbatch, squeue, sacct or scancel ---
# submit --executor slurm, and status, cancel and retry of a Slurm batch, run here on the host,
# with the host's python3 (>= 3.8) and the kit's own source that install put beside the image
# (they import only the standard library). The jobs they submit call this wrapper again
# ($ALPHAFOLD_KIT_BIN), so the stages themselves run in the image.
host_batch() {
  local d
  [ "$cmd" = alphafold-batch ] || return 1
  case "$sub" in
    submit|screen) [ "$executor" = @{slurm} ] ;;
    status|cancel|retry)
      for d in "${batch_dirs[@]+"${batch_dirs[@]}"}"; do
        grep -qs '"executor": *"@{slurm}"' "$d/.batch/batch.json" && return 0
      done
      return 1 ;;
    *) return 1 ;;
  esac
}
HOST_MAIN='import runpy, sys
sys.path.insert(0, sys.argv.pop(1))
runpy.run_module("fold_runtime", run_name="__main__", alter_sys=True)'
if host_batch; then
  py=${ALPHAFOLD_HOST_PYTHON:-python3}
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 8))' >/dev/null 2>&1 ||
    die "alphafold-batch $sub talks to Slurm (not in the image), so it runs on this host with python3 >= 3.8:
  '$py' is not one" \
        "load a Python 3.8+ module, or set ALPHAFOLD_HOST_PYTHON to one (it needs only the standard library)"
  # lib/ goes in as an argument, not as $PYTHONPATH, so the jobs sbatch starts inherit nothing of it;
  # -I -S: neither the user's PYTHONPATH nor any site-packages can shadow the kit or the standard library.
  exec "$py" -I -S -c "$HOST_MAIN" "$(dirname "$KIT_RUNTIME")/lib" batch "$@"
fi

image=${ALPHAFOLD_IMAGE:-$KIT_RUNTIME}
command -v apptainer >/dev/null 2>&1 ||
  die "apptainer not found on PATH" \
      "module load apptainer (or singularity), or install the kit with METHOD=conda or venv"
[ -f "$image" ] || die "image $image not found" "set ALPHAFOLD_IMAGE or reinstall: make install METHOD=apptainer"

# --- The directories the command reads and writes by default ---
# Those the command line or the environment names are bound first, so a bad one is refused before
# anything runs; those left to the site config are bound once it has been read.
pending=()   # ACTION SECTION KEY, for each default the site config gives
bind_default() {  # bind_default ACTION VALUE SECTION KEY: ACTION VALUE, or later the site config's SECTION KEY
  if [ -n "$2" ]; then "$1" "$2"; else pending+=("$1" "$3" "$4"); fi
}
if [ "$cmd" = alphafold-data ]; then
@{data_roots}
else
  for d in "${made[@]+"${made[@]}"}"; do want_made "$d"; done
  if [ ${#data_dirs[@]} = 0 ]; then   # the runtime's default: its variable, else a site root
    if [ -n "${@{data_env}:-}" ]; then data_dirs=("$@{data_env}")
    else pending+=(want_ro data shared_root want_ro data local_root); fi
  fi
  for d in "${data_dirs[@]+"${data_dirs[@]}"}"; do want ro "$d"; done
@{path_defaults}
fi
want ro "${ALPHAFOLD_SITE_CONFIG:-}"
# The site config as the runtime reads it: kit_common.site_config (configparser), run by the image's
# Python, not a second parser here. The image's, not the host's: every node that runs the kit has
# it, at the version the kit needs (a host python3 may be missing or older); it costs one container
# start, made only when a default is left to the site config. A config it cannot read binds
# nothing: the command itself then stops, naming the file, key and fix (--help still answers).
SITE_VALUES='import sys
from kit_common import errors, site_config
try:
    site = site_config.load(sys.argv[1])
except errors.KitError:
    sys.exit()
for name in sys.argv[2:]:
    section, key = name.split(".")
    print(getattr(getattr(site, section), key) or "")'
site_conf=$(absolute "${ALPHAFOLD_SITE_CONFIG:-/nonexistent}")
if [ ${#pending[@]} != 0 ] && [ -f "$site_conf" ]; then
  keys=()
  for ((i = 0; i < ${#pending[@]}; i += 3)); do keys+=("${pending[i+1]}.${pending[i+2]}"); done
  mapfile -t site_values < <(apptainer exec --cleanenv --bind "$site_conf:$site_conf:ro" "$image" \
                               python -c "$SITE_VALUES" "$site_conf" "${keys[@]}")
  for ((i = 0; i < ${#pending[@]}; i += 3)); do "${pending[i]}" "${site_values[i/3]:-}"; done
fi
# The working directory, for what a command writes there by default. Never `/` (the host's whole
# tree, read-write, over the image's), and not a name --bind cannot carry: a command that names
# no path in it (--version, absolute paths) still runs; a relative path in it is refused by want.
case "$PWD" in /|*,*|*:*) ;; *) want rw "$PWD" ;; esac
want rw "${TMPDIR:-/tmp}"

# A batch's jobs (msa-task, gpu-worker) and retry run with the options recorded at submit: bind
# the directories they name too. The image's Python reads the record (a node may have no other).
RECORDED='import json, sys
batch = json.load(open(sys.argv[1]))
for mode, part, key in (@{recorded}):
    value = (batch.get(part) or {}).get(key)
    for path in value if isinstance(value, list) else [value]:
        if path:
            sys.stdout.write("%s\0%s\0" % (mode, path))'
case "$cmd $sub" in
  "alphafold-batch msa-task"|"alphafold-batch gpu-worker"|"alphafold-batch retry")
    for d in "${batch_dirs[@]+"${batch_dirs[@]}"}"; do
      [ -f "$d/.batch/batch.json" ] || continue
      while IFS= read -r -d '' mode && IFS= read -r -d '' path; do
        want "$mode" "$path"
      done < <(apptainer exec --cleanenv --bind "$d:$d:ro" "$image" python -c "$RECORDED" "$d/.batch/batch.json")
      [ "$sub" = msa-task ] && grep -Eqs '"(@{gpu_fields})": *true' "$d/.batch/batch.json" && gpu=1
    done ;;
esac

# Parents before children (byte order), so a nested bind is mounted over its parent's.
binds=()
while IFS= read -r -d '' path; do
  if [ "${bind_mode[$path]}" = ro ]; then binds+=(--bind "$path:$path:ro"); else binds+=(--bind "$path:$path"); fi
done < <(for path in "${!bind_mode[@]}"; do printf '%s\0' "$path"; done | LC_ALL=C sort -z)

# A clean environment inside, plus what the job needs: Slurm, GPU selection and the kit's settings.
for name in $(compgen -e); do
  case "$name" in
    SLURM_*|CUDA_VISIBLE_DEVICES|ALPHAFOLD_*|XLA_*|TF_*|TMPDIR) export "APPTAINERENV_$name=${!name}" ;;
  esac
done
nv=()
[ "$gpu" = 1 ] && nv=(--nv)
exec apptainer exec --cleanenv "${nv[@]+"${nv[@]}"}" "${binds[@]+"${binds[@]}"}" "$image" python "${entry[@]}" "$@"
