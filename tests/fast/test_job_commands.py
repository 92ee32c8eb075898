"""The commands a batch's jobs run are written by the executors and parsed by alphafold-batch from
one declaration (fold_runtime/batch/job_commands.py): what a job script or the local executor
writes parses back to the values it meant."""
import shlex

import pytest

from fold_runtime.batch import job_commands
from fold_runtime.batch.executors import slurm
from kit_common import site_config


def parsed(words):
    command, rest = words[0], words[1:]
    return vars(job_commands.parser(command).parse_args(rest))


def test_local_executor_arguments_parse_back_to_their_values():
    words = job_commands.arguments(job_commands.GPU_WORKER, '/b', worker=2, executor='local', cpu_stage='/b/flag',
                                   parent_pid=42, poll=1)
    assert parsed(words) == dict(output_dir='/b', worker='2', executor='local', cpu_stage='/b/flag',
                                 parent_pid=42, poll=1.0)
    assert parsed(job_commands.arguments(job_commands.MSA_TASK, '/b', target='t1', cpus=3)) == \
        dict(output_dir='/b', target='t1', cpus=3)


def test_a_field_no_command_declares_is_refused():
    with pytest.raises(ValueError, match='msa-task takes no worker'):
        job_commands.arguments(job_commands.MSA_TASK, '/b', target='t', worker=1)


def exec_words(script, env):
    """The job script's exec line as bash would split it, with the array variables expanded."""
    line = next(l for l in script.splitlines() if l.startswith('exec '))
    for name, value in env.items():
        line = line.replace(name, value)
    words = shlex.split(line)
    return words[words.index('batch') + 1:]


def test_slurm_job_scripts_run_the_declared_commands(monkeypatch):
    monkeypatch.delenv('ALPHAFOLD_KIT_BIN', raising=False)   # this Python, then `batch`
    settings = site_config.Slurm()
    msa = slurm.msa_script('/b dir', ['t1', 't2'], settings)
    assert parsed(exec_words(msa, {'"${targets[$SLURM_ARRAY_TASK_ID]}"': 't2', '"$SLURM_CPUS_PER_TASK"': '5'})) == \
        dict(output_dir='/b dir', target='t2', cpus=5)
    predict = slurm.predict_script('/b dir', 2, settings, ['11', '12'])
    assert parsed(exec_words(predict, {'"$SLURM_ARRAY_TASK_ID"': '1'})) == \
        dict(output_dir='/b dir', worker='1', executor='slurm', cpu_stage='11,12', parent_pid=None, poll=10.0)
