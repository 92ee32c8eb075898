"""A batch target's stage, as status shows it, from the records on disk; claims are exclusive."""
import pytest

from fold_runtime import fasta
from fold_runtime.batch import inputs, state
from fold_runtime.options import BatchSettings, CpuStageOptions, GpuStageOptions


@pytest.fixture
def batch(tmp_path):
    out = str(tmp_path)
    targets = [fasta.Target('a', 'a', 'MKV', '/in/a.fa'), fasta.Target('b', 'b', 'MKV', '/in/b.fa'),
               fasta.Target('c', 'c', 'ACD', '/in/c.fa')]
    state.save(out, state.record(targets, inputs.units(targets), CpuStageOptions(), GpuStageOptions(),
                                 BatchSettings()))
    return out


def stages(out):
    return {s['name']: s['stage'] for s in state.statuses(out)}


def test_stage_follows_the_records(batch):
    assert stages(batch) == {'a': 'pending', 'b': 'pending', 'c': 'pending'}
    state.write_stage(batch, 'a', 'msa', 'running')
    assert stages(batch)['a'] == 'msa'
    state.write_stage(batch, 'a', 'msa', 'done', features_source='cpu_stage')
    assert stages(batch)['a'] == 'ready'
    state.write_stage(batch, 'a', 'predict', 'running')
    assert stages(batch) == {'a': 'predicting', 'b': 'predicting', 'c': 'pending'}   # b duplicates a
    state.write_stage(batch, 'a', 'predict', 'done')
    assert stages(batch) == {'a': 'done', 'b': 'predicting', 'c': 'pending'}        # until its copy exists
    state.write_stage(batch, 'b', 'predict', 'done', duplicate_of='a')
    assert stages(batch)['b'] == 'done'
    st = {s['name']: s for s in state.statuses(batch)}
    assert st['b']['features'] == 'duplicate of a' and st['a']['features'] == 'cpu_stage'
    assert st['a']['msa_start'] <= st['a']['msa_end'] and st['a']['predict_end']


def test_failures_show_their_error(batch):
    state.write_stage(batch, 'c', 'msa', 'running')
    state.write_stage(batch, 'c', 'msa', 'failed', error='jackhmmer failed')
    st = {s['name']: s for s in state.statuses(batch)}
    assert st['c']['stage'] == 'failed' and st['c']['error'] == 'jackhmmer failed'
    state.write_stage(batch, 'a', 'msa', 'done')
    state.write_stage(batch, 'a', 'predict', 'failed', error='out of memory')
    assert {s['name']: s['error'] for s in state.statuses(batch) if s['stage'] == 'failed'} == {
        'a': 'out of memory', 'b': 'out of memory', 'c': 'jackhmmer failed'}
    state.clear_stage(batch, 'a', 'predict')
    assert stages(batch)['a'] == 'ready'


def test_a_claim_is_exclusive_but_its_owner_takes_it_back(batch):
    assert state.claim(batch, 'a', 'job_1')
    assert not state.claim(batch, 'a', 'job_2')
    assert state.claim(batch, 'a', 'job_1')      # a requeued job keeps its id
    state.clear_claims(batch)
    assert state.claim(batch, 'a', 'job_2')


def test_stored_options_come_back_typed(batch):
    cpu, gpu, settings = state.stored_options(state.load(batch))
    assert (cpu, gpu, settings) == (CpuStageOptions(), GpuStageOptions(), BatchSettings())


def test_option_changes_name_each_difference(batch):
    stored = state.load(batch)
    same = state.record([], {}, CpuStageOptions(), GpuStageOptions(), BatchSettings())
    assert state.option_changes(stored, same) == []
    other = state.record([], {}, CpuStageOptions(cpus=4), GpuStageOptions(num_recycle=1, buckets=(64,)),
                         BatchSettings(executor='slurm'))
    assert state.option_changes(stored, other) == [
        'cpu_options.cpus: 1 -> 4', 'gpu_options.buckets: None -> [64]', 'gpu_options.num_recycle: None -> 1',
        "settings.executor: 'local' -> 'slurm'"]
