"""The kit's commands: the module each runs and when it needs the GPU. The installer makes the
wrappers from this (installer/wrapper.sh's command table is rendered from it at install)."""
import collections

# gpu: ALL, or the subcommands that need the GPU in their own process.
Command = collections.namedtuple('Command', 'name module gpu')
ALL = 'all'

COMMANDS = (
    Command('alphafold-msa', ('fold_runtime', 'msa'), ()),
    Command('alphafold-predict', ('fold_runtime', 'predict'), ALL),
    Command('alphafold-run', ('fold_runtime', 'run'), ALL),
    # submit, screen and retry run the local executor's GPU workers as their children; with the
    # Slurm executor they run on the host instead (wrapper.sh), and each job's gpu-worker gets the GPU.
    Command('alphafold-batch', ('fold_runtime', 'batch'), ('submit', 'screen', 'retry', 'gpu-worker')),
    Command('alphafold-data', ('data_sync',), ()),
)
NAMES = tuple(c.name for c in COMMANDS)


def needs_gpu(name, sub):
    """Whether `name sub ...` runs GPU work in its own process."""
    gpu = next(c.gpu for c in COMMANDS if c.name == name)
    return gpu == ALL or sub in gpu


def wrapper_table():
    """The `case "$cmd"` arms of wrapper.sh: the entry point, and gpu=1 where it needs the GPU."""
    arms = []
    for c in COMMANDS:
        entry = 'entry=(-m %s)' % ' '.join(c.module)
        if c.gpu == ALL or not c.gpu:
            gpu = 'gpu=%d' % (c.gpu == ALL)
        else:
            gpu = 'case "$sub" in %s) gpu=1 ;; *) gpu=0 ;; esac' % '|'.join(c.gpu)
        arms.append('  %s) %s; %s ;;' % (c.name, entry, gpu))
    return '\n'.join(arms)
