"""The two commands a batch's jobs run, `alphafold-batch msa-task` and `gpu-worker`: their options
declared once, for the parsers in batch/cli.py and the command lines the executors write."""
import argparse

from fold_runtime import options

MSA_TASK, GPU_WORKER = 'msa-task', 'gpu-worker'
# Per command: (field, flag, argparse keywords), in the order the executors write them.
OPTIONS = {
    MSA_TASK: (
        ('target', '--target', dict(required=True)),
        ('cpus', '--cpus', dict(type=int)),
    ),
    GPU_WORKER: (
        ('worker', '--worker', dict(default='0')),
        ('executor', '--executor', dict(choices=options.EXECUTORS, default=options.SLURM,
                                        help='the executor that started it')),
        ('cpu_stage', '--cpu-stage', dict(help="the executor's token for the CPU stage to wait for (a Slurm job "
                                                'id, a flag file)')),
        ('parent_pid', '--parent-pid', dict(type=int, help='stop when this process (a local batch) is gone')),
        ('poll', '--poll', dict(type=float, default=10.0, help='seconds between looks for ready features')),
    ),
}
DESCRIPTIONS = {MSA_TASK: '(job scripts) one CPU stage', GPU_WORKER: '(job scripts) one GPU worker'}


def parser(command):
    p = argparse.ArgumentParser(allow_abbrev=False, prog='alphafold-batch ' + command,
                                description=DESCRIPTIONS[command])
    p.add_argument('output_dir')
    for field, flag, kwargs in OPTIONS[command]:
        p.add_argument(flag, dest=field, **kwargs)
    return p


def arguments(command, out, **values):
    """The command's arguments after `alphafold-batch`: its name, the batch directory and the given
    values by field, as strings (a job script passes shell words, already quoted)."""
    unknown = set(values) - {field for field, _, _ in OPTIONS[command]}
    if unknown:
        raise ValueError('%s takes no %s' % (command, ', '.join(sorted(unknown))))
    return [command, str(out)] + [a for field, flag, _ in OPTIONS[command] if values.get(field) is not None
                                  for a in (flag, str(values[field]))]
