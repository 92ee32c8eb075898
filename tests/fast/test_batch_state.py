"""A batch target's stage, as status shows it, from the records on disk; claims are exclusive."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

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


def _times(out, name, stage, started, finished):
    """Give a stage record the times of a real run (write_stage stamps now)."""
    import json
    path = state.batch_dir(out, 'state', '%s.%s.json' % (name, stage))
    with open(path) as f:
        record = json.load(f)
    record.update(started=started, finished=finished)
    with open(path, 'w') as f:
        json.dump(record, f)


def test_report_scores_csv_and_a_figure_that_shows_every_stage(batch):
    """A 2 s CPU stage beside a 1 h GPU stage still draws a bar; the duplicate is noted, not
    counted in the throughput; no accelerator, no "accelerator busy"; times in ISO-8601."""
    import csv
    import json
    import os
    from fold_runtime.batch import report
    best = {'model': 'model_3_ptm', 'mean_plddt': 81.234, 'ptm': 0.71, 'iptm': None, 'ranking_confidence': 81.234}
    state.write_stage(batch, 'a', 'msa', 'done', features_source='cpu_stage')
    _times(batch, 'a', 'msa', 1000.0, 1002.0)
    state.write_stage(batch, 'a', 'predict', 'done', best=best)
    _times(batch, 'a', 'predict', 1002.0, 4602.0)
    state.write_stage(batch, 'b', 'predict', 'done', duplicate_of='a')
    state.write_stage(batch, 'c', 'msa', 'failed', error='jackhmmer failed\nmore')
    worker = {'wall_s': 3700.0, 'busy_s': 3600.0, 'compiles': 3, 'compile_s': 50.0, 'accelerator': None}
    with open(state.batch_dir(batch, 'timings', 'worker-0-local-1.json'), 'w') as f:
        json.dump(worker, f)

    summary = report.summarise(batch)
    assert summary['proteins_per_hour'] == 1.0 and summary['done'] == 2 and summary['unique_done'] == 1
    assert summary['gpu_busy_fraction'] is None and summary['worker_busy_fraction'] == round(3600 / 3700.0, 4)
    fig = report.figure(summary)
    timeline, times = fig.axes
    bars = [p.get_x() + p.get_width() for p in times.patches]
    assert bars == [2.0, 3600.0]                        # a's CPU and GPU stage; c has no finished stage
    assert times.get_xscale() == 'log' and times.get_xlim()[0] == 1.0   # both at least a decade wide
    assert [p.get_width() for p in timeline.patches] == [3602 / 60.0 * 0.004, 60.0]   # 2 s: the minimum width
    assert [t.get_text() for t in times.get_yticklabels()] == ['a', 'c']
    text = timeline.get_title()
    assert 'duplicates not drawn' in text and ': b' in text and 'no accelerator used' in text
    assert 'accelerator busy' not in text and '1.0 unique proteins/hour' in text

    report.write(batch)
    with open(os.path.join(batch, 'summary.csv')) as f:
        rows = {r['target']: r for r in csv.DictReader(f)}
    assert (rows['a']['best_model'], rows['a']['mean_plddt'], rows['a']['ptm']) == ('model_3_ptm', '81.23', '0.71')
    assert rows['b']['duplicate_of'] == 'a' and rows['b']['best_model'] == 'model_3_ptm'
    assert rows['c']['error'] == 'jackhmmer failed' and rows['c']['best_model'] == ''
    assert (rows['a']['msa_s'], rows['a']['predict_s']) == ('2.0', '3600.0')
    with open(os.path.join(batch, 'report.json')) as f:
        saved = json.load(f)
    a = next(r for r in saved['per_target'] if r['name'] == 'a')
    assert a['msa_start'] == '1970-01-01T00:16:40.000+00:00' and a['best']['ptm'] == 0.71

    worker['accelerator'] = 'gpu'
    with open(state.batch_dir(batch, 'timings', 'worker-0-local-1.json'), 'w') as f:
        json.dump(worker, f)
    assert 'accelerator busy 97%' in report.title(report.summarise(batch))


def test_relaxation_shows_apart_from_prediction_in_status_report_and_figure(batch):
    """A target predicted, then relaxed in the worker's relax pool: 'relaxing' (not done) until its
    relax is; status and report give predict and relax time apart, the figure draws each on its
    own lane, and "accelerator busy" counts predictions only (the worker's busy_s)."""
    import io
    import json
    from fold_runtime.batch import cli, report
    state.write_stage(batch, 'a', 'msa', 'done', features_source='cpu_stage')
    _times(batch, 'a', 'msa', 1000.0, 1010.0)
    state.write_stage(batch, 'a', 'predict', 'running')
    state.write_stage(batch, 'a', 'predict', 'relaxing', predict_s=80.0, relax_s=0.0)
    assert stages(batch)['a'] == 'relaxing'
    state.write_stage(batch, 'a', 'predict', 'done', predict_s=80.0, relax_s=30.0, relax_start=1100.0,
                      relax_end=1130.0, best={'model': 'model_1_ptm', 'mean_plddt': 70.0, 'ptm': 0.5, 'iptm': None,
                                              'ranking_confidence': 70.0})
    path = state.batch_dir(batch, 'state', 'a.predict.json')
    with open(path) as f:
        record = json.load(f)
    with open(path, 'w') as f:
        json.dump(dict(record, started=1010.0, predicted=1100.0, finished=1131.0), f)
    worker = {'wall_s': 200.0, 'busy_s': 80.0, 'relax_s': 30.0, 'compiles': 1, 'compile_s': 5.0, 'accelerator': 'gpu'}
    with open(state.batch_dir(batch, 'timings', 'worker-0-local-1.json'), 'w') as f:
        json.dump(worker, f)
    summary = report.summarise(batch)
    assert summary['gpu_busy_fraction'] == 0.4 and (summary['predict_s'], summary['relax_s']) == (80.0, 30.0)
    assert {k: v['max'] for k, v in summary['stage_seconds'].items()} == {'msa': 10.0, 'predict': 90.0, 'relax': 30.0}
    title = report.title(summary)
    assert 'predict 80 s, relax 30 s' in title and 'accelerator busy 40% (predictions only)' in title
    fig = report.figure(summary)
    timeline, times = fig.axes
    assert [round(p.get_x() + p.get_width(), 1) for p in times.patches] == [10.0, 90.0, 30.0]
    assert sorted(round(p.get_y() + p.get_height() / 2, 2) for p in timeline.patches) == [-0.25, 0.0, 0.25]
    table = io.StringIO()
    cli.print_table(state.statuses(batch), table)
    header, row = (l.split() for l in table.getvalue().splitlines()[1:3])
    assert header[7:9] == ['PREDICT_S', 'RELAX_S'] and row[0] == 'a' and row[5:7] == ['80.0', '30.0']


def test_an_option_added_later_counts_as_its_default_on_resubmit(batch):
    """A batch.json written before --no-plots existed resubmits without --force; one that turned
    plots off differs."""
    from fold_runtime.options import GpuStageOptions
    stored = state.load(batch)
    del stored['gpu_options']['plots']
    new = dict(stored, gpu_options=dict(stored['gpu_options'], plots=True))
    assert state.option_changes(stored, new) == []
    assert state.option_changes(stored, dict(new, gpu_options=dict(new['gpu_options'], plots=False))) == [
        'gpu_options.plots: True -> False']
    assert GpuStageOptions().plots is True
    del stored['settings']['relax_workers']   # a batch from before the relax pool
    assert state.option_changes(stored, state.load(batch)) == []


def test_progress_is_plain_lines_off_a_terminal_and_heartbeats_stop_with_their_step(batch, caplog):
    import logging
    import time
    from fold_runtime import progress
    from fold_runtime.batch.executors import local
    caplog.set_level(logging.INFO)
    bar = local._progress_bar(3, True)          # pytest's stderr is no terminal
    state.write_stage(batch, 'c', 'msa', 'done')
    local._update(bar, batch)
    local._update(bar, batch)                   # nothing changed: no second line
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith('alphafold-batch:')]
    assert lines == ['alphafold-batch: 0/3 targets finished (pending 2, ready 1)']
    progress.configure(0.05)
    try:
        with progress.Heartbeat(lambda: 'step x'):
            time.sleep(0.4)
        count = sum('still running: step x' in r.getMessage() for r in caplog.records)
        time.sleep(0.2)
        assert count >= 3 and sum('still running: step x' in r.getMessage() for r in caplog.records) == count
    finally:
        progress.configure(progress.DEFAULT_INTERVAL)
    assert progress.elapsed(59) == '59s' and progress.elapsed(725) == '12m05s' and progress.elapsed(10920) == '3h02m'


@pytest.mark.parametrize('text', ['[{"exec', '[1, 2]', '{"a": 1}', '[{"executor": "pbs"}]',
                                  '[{"executor": "local", "pid": "12"}]', '[{"executor": "slurm", "job": "7"}]'])
def test_a_damaged_jobs_list_names_the_file_and_the_fix(batch, text):
    """status and cancel read it to know which jobs still run: a traceback before."""
    path = os.path.join(batch, '.batch', 'jobs.json')
    with open(path, 'w') as f:
        f.write(text)
    for command in ('status', 'cancel'):
        res = run_batch(command, batch)
        assert res.returncode == 2 and path in res.stdout and 'is damaged' in res.stdout, res.stdout
        assert 'scancel' in res.stdout and 'Traceback' not in res.stdout


def test_a_submission_reads_back_as_written(batch):
    """jobs.json entries are state.Submission records: typed on the way in and out, as stored before."""
    first = state.Submission('slurm', ('c', 'd'), msa_job='11,12', predict_job='13')
    state.add_submission(batch, first)
    state.add_submission(batch, state.Submission('local', (), pid=4, host='n1', pid_start=99))
    back = state.read_submissions(batch)
    assert [b.executor for b in back] == ['slurm', 'local'] and all(b.submitted for b in back)
    assert back[0] == state.Submission('slurm', ('c', 'd'), back[0].submitted, '11,12', '13')
    with open(os.path.join(batch, '.batch', 'jobs.json')) as f:
        stored = json.load(f)[0]
    assert stored['msa_targets'] == ['c', 'd'] and stored['msa_job'] == '11,12' and stored['predict_job'] == '13'


@pytest.mark.parametrize('text', ['{"state": "do', '"x"', '[]'])
def test_a_damaged_stage_record_counts_as_failed(batch, text):
    """Truncated, a finished target showed as 'ready'; "x" was a traceback in status and report."""
    state.write_stage(batch, 'c', 'msa', 'done')
    state.write_stage(batch, 'c', 'predict', 'done')
    path = os.path.join(batch, '.batch', 'state', 'c.predict.json')
    with open(path, 'w') as f:
        f.write(text)
    row = {s['name']: s for s in state.statuses(batch)}['c']
    assert row['stage'] == 'failed' and path in row['error'] and 'alphafold-batch retry' in row['error']
    res = run_batch('status', batch)
    assert res.returncode == 1 and 'failed 1' in res.stdout and 'Traceback' not in res.stdout, res.stdout


def test_a_batch_record_of_another_shape_is_not_called_an_older_version(batch):
    path = os.path.join(batch, '.batch', 'batch.json')
    for text in ('[]', '{"format": 2, "targets": []}'):
        with open(path, 'w') as f:
            f.write(text)
        res = run_batch('status', batch)
        assert res.returncode == 2 and 'is not a batch record the kit wrote' in res.stdout, res.stdout
        assert 'older version' not in res.stdout and 'Traceback' not in res.stdout


def run_batch(*args):
    return subprocess.run([sys.executable, '-m', 'fold_runtime', 'batch'] + list(args), cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)


def test_mmseqs2_chunks_follow_memory_and_database_size():
    """--msa-mode mmseqs2: queries per MMseqs2 run from the task's memory beside the databases'
    resident part (at most half the memory), at least 1, at most MAX_CHUNK; chunks in batch order."""
    from fold_runtime import options
    from fold_runtime.batch import mmseqs_chunks as mc
    gib = 2 ** 30
    assert mc.chunk_size(16 * gib, 0) == 64                     # 16 GiB / 256 MiB per query
    assert mc.chunk_size(16 * gib, 6 * gib) == 40               # the databases take their size
    assert mc.chunk_size(16 * gib, 940 * 10 ** 9) == 32         # ColabFold's 940 GB: MMseqs2 splits them
    assert mc.chunk_size(128 * gib, 0) == mc.MAX_CHUNK and mc.chunk_size(gib // 4, gib) == 1
    slurm = options.batch_settings({'executor': 'slurm', 'slurm': {'cpu_mem': '16G'}})
    assert mc.task_memory(slurm, 8) == 16 * gib
    assert mc.task_memory(options.batch_settings({'executor': 'slurm', 'slurm': {'cpu_mem': '2048'}}), 8) == 2 * gib
    names = ['t%d' % i for i in range(70)]
    chunks = mc.plan(names, None, slurm, 8)
    assert [len(c) for c in chunks] == [64, 6] and sum(chunks, []) == names


def test_a_failed_mmseqs2_run_of_a_chunk_is_a_tool_error_naming_its_proteins(tmp_path):
    """The chunk's MMseqs2 fails (here the real /bin/false stands in for a broken mmseqs): exit 4 with
    the chunk's proteins, no traceback, and nothing stored for them."""
    import types
    from fold_runtime.batch import mmseqs_chunks as mc
    from kit_common.errors import KitError
    env = types.SimpleNamespace(binaries={'mmseqs': '/bin/false'}, paths={'colabfold_uniref': 'u', 'colabfold_envdb': 'e'},
                                opts=types.SimpleNamespace(cpus=1, mmseqs_gpu=False), fingerprint={},
                                tool_versions={'mmseqs': '14'})
    batch = {'mmseqs_chunks': [['a', 'b']], 'targets': [{'primary': 'a', 'sequence': 'MKV'},
                                                        {'primary': 'b', 'sequence': 'ACD'}]}
    with pytest.raises(KitError) as err:
        mc.a3m(str(tmp_path), batch, 'b', env)
    assert err.value.exit_code == 4 and 'the MMseqs2 run of a, b failed' in err.value.problem
    assert not [f for f in os.listdir(str(tmp_path / '.batch' / mc.STORE)) if f.endswith('.a3m')]


def test_the_relax_pool_holds_at_most_twice_its_size_before_the_worker_waits():
    from fold_runtime.batch.relax_pool import Pool
    assert [Pool(2, 0).backlogged(n) for n in (0, 3, 4)] == [False, False, True]
    assert not Pool(0, 0).backlogged(10)    # inline: nothing waits


def test_relax_workers_0_finishes_each_target_in_the_workers_own_process(tmp_path):
    """[batch] relax_workers = 0 (the batch benchmark's "relax inline", the worker before the pool):
    the target's ranked files are written before submit returns, and no process is started."""
    import multiprocessing
    from fold_runtime.batch.relax_pool import Pool
    from fold_runtime.gpu_stage.predict import Ranking
    pool = Pool(0, 0)
    future = pool.submit(Ranking(str(tmp_path), [], {}, 'plddts', {}, {}, 'best', False, None, {}))
    assert future.done() and future.result()['error'] is None
    assert {'ranking_debug.json', 'scores.json', 'relax_metrics.json'} <= set(os.listdir(str(tmp_path)))
    assert pool.executor is None and not multiprocessing.active_children()


def test_the_pool_relaxes_on_the_cpu_unless_the_site_or_the_user_chooses_the_gpu():
    from fold_runtime.batch.relax_pool import on_gpu
    pool, gpu_pool, inline = (BatchSettings(relax_workers=2), BatchSettings(relax_workers=2, relax_on_gpu=True),
                              BatchSettings(relax_workers=0))
    assert [on_gpu(None, s, 1) for s in (pool, gpu_pool, inline)] == [False, True, True]
    assert [on_gpu(None, s, 0) for s in (pool, gpu_pool, inline)] == [False, False, False]   # no GPU visible
    assert on_gpu(True, pool, 1) and not on_gpu(False, gpu_pool, 1)                          # the user decides
