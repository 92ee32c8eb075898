"""alphafold-batch: inputs and deduplication, length-bucket padding, the local executor with a
failure and retry, a SIGKILL'd batch resumed by a second submit, and the slurm executor on the
real one-node cluster (tests/slurm_cluster.py). Predictions use the STAND-IN test weights on the
CPU; the GPU workers' GPUs are STAND-INs too (GRES on /dev/tty*, or none locally)."""
import json
import os
import pickle
import re
import subprocess
import sys
import time

import numpy as np

from conftest import GPU_ARGS, ROOT, run_kit

# One model, no recycling, no relaxation: the batch machinery is under test, not AlphaFold.
BATCH_GPU = ('--model-preset', 'monomer_ptm', '--models', 'model_1', '--num-recycle', '0',
             '--models-to-relax', 'none', '--no-result-pkl', '--db-preset', 'reduced_dbs', '--no-progress')


def sequence(path):
    with open(path) as f:
        return ''.join(l.strip() for l in f if not l.startswith('>'))


def batch_inputs(targets, tmp_path):
    """4 targets, 3 unique sequences: a multi-record FASTA (with a duplicate) and a directory."""
    cono, hbb = sequence(targets['conotoxin']), sequence(targets['hbb_human'])
    multi = tmp_path / 'targets.fasta'
    multi.write_text('>conotoxin first\n%s\n>conotoxin/copy the same sequence\n%s\n>hbb30 prefix\n%s\n'
                     % (cono, cono, hbb[:30]))
    more = tmp_path / 'more'
    more.mkdir()
    (more / 'hbb 40.fasta').write_text('>anything\n%s\n' % hbb[:40])
    return [str(multi), str(more)]


def statuses(out):
    res = run_kit('batch', 'status', out, '--json')
    return {r['name']: r for r in json.loads(res.stdout[res.stdout.index('['):])}


def msa_intervals(out, names):
    states = [json.load(open(os.path.join(out, '.batch', 'state', n + '.msa.json'))) for n in names]
    return sorted((s['started'], s['finished']) for s in states)


def test_padded_prediction_matches_unpadded_and_nothing_of_the_padding_leaks(conotoxin_features, conotoxin_recycled,
                                                                              full_data_dir, tmp_path):
    """Tolerance: pLDDT within 0.5, CA within 0.05 A, PAE within 0.25 A (the padding is masked;
    only float rounding differs); one recycle, so the padded residues' recycled positions are masked
    too. The unpadded run is the shared recycled prediction (model_1_ptm, seed 0)."""
    import shutil
    from alphafold.common import protein
    tdir = tmp_path / 'padded' / 'conotoxin'
    shutil.copytree(conotoxin_features, str(tdir))
    res = run_kit('predict', '--target-dir', tdir, '--data-dir', full_data_dir, '--model-preset', 'monomer_ptm',
                  '--models', 'model_1', '--num-recycle', '1', '--models-to-relax', 'none', '--buckets', '64')
    assert res.returncode == 0, res.stdout
    runs = {'plain': conotoxin_recycled, 'padded': tdir}
    assert json.loads((runs['plain'] / 'timings.json').read_text())['padded_length'] == 24
    assert json.loads((runs['padded'] / 'timings.json').read_text())['padded_length'] == 64
    results = {k: pickle.load(open(str(d / 'result_model_1_ptm.pkl'), 'rb')) for k, d in runs.items()}
    plain, padded = results['plain'], results['padded']
    assert padded['plddt'].shape == (24,)
    assert padded['predicted_aligned_error'].shape == (24, 24)
    assert padded['distogram']['logits'].shape[:2] == (24, 24)
    assert padded['masked_msa']['logits'].shape[1] == 24
    assert padded['structure_module']['final_atom_positions'].shape[0] == 24
    assert np.abs(plain['plddt'] - padded['plddt']).max() <= 0.5
    assert np.abs(plain['predicted_aligned_error'] - padded['predicted_aligned_error']).max() <= 0.25
    ca = {k: protein.from_pdb_string((d / 'unrelaxed_model_1_ptm.pdb').read_text()).atom_positions[:, 1]
          for k, d in runs.items()}
    assert ca['padded'].shape == (24, 3)
    assert np.abs(ca['plain'] - ca['padded']).max() <= 0.05
    # DeepMind's model scores padded residues too, so the kit recomputes pLDDT, pTM and the ranking
    # from the cropped outputs: they must equal the unpadded run's, and pTM DeepMind's own
    # predicted_tm_score on the same probabilities.
    assert abs(float(plain['ptm']) - float(padded['ptm'])) <= 1e-3
    ranking = {k: json.loads((d / 'ranking_debug.json').read_text())['plddts']['model_1_ptm'] for k, d in runs.items()}
    assert abs(ranking['plain'] - ranking['padded']) <= 0.05
    from alphafold.common import confidence
    deepmind = confidence.predicted_tm_score(np.log(padded['aligned_confidence_probs'].astype(np.float64) + 1e-12),
                                             np.linspace(0., 31., 63))
    assert abs(float(padded['ptm']) - float(deepmind)) <= 1e-4
    conf = json.loads((runs['padded'] / 'confidence_model_1_ptm.json').read_text())
    pae = json.loads((runs['padded'] / 'pae_model_1_ptm.json').read_text())
    assert len(conf['residueNumber']) == 24 and len(pae[0]['predicted_aligned_error']) == 24


def failing_jackhmmer(tmp_path, fail_on):
    """A jackhmmer that fails for one sequence while a flag file exists: the cause to fix."""
    import shutil
    flag = tmp_path / 'broken'
    flag.write_text('')
    script = tmp_path / 'jackhmmer'
    script.write_text('#!/bin/bash\nq=${@: -2:1}\n'   # jackhmmer ... QUERY.fasta DATABASE
                      'if [ -e %s ] && grep -qx %s "$q"; then echo "disk quota exceeded" >&2; exit 1; fi\n'
                      'exec %s "$@"\n' % (flag, fail_on, shutil.which('jackhmmer')))
    script.chmod(0o755)
    return str(script), flag


def test_local_batch_dedupes_reports_failure_and_retry_completes_it(targets, full_data_dir, tmp_path):
    out = str(tmp_path / 'out')
    jackhmmer, flag = failing_jackhmmer(tmp_path, sequence(targets['hbb_human'])[:30])
    submit = ('batch', 'submit', '--fasta', *batch_inputs(targets, tmp_path), '--output-dir', out,
              '--data-dir', full_data_dir, '--jackhmmer-binary', jackhmmer, *BATCH_GPU)
    res = run_kit(*submit)
    assert res.returncode == 1, res.stdout
    st = statuses(out)
    assert st['hbb30']['stage'] == 'failed' and 'jackhmmer' in st['hbb30']['error'], st['hbb30']
    assert {n: st[n]['stage'] for n in ('conotoxin', 'conotoxin_copy', 'hbb_40')} == dict.fromkeys(
        ('conotoxin', 'conotoxin_copy', 'hbb_40'), 'done')
    assert st['conotoxin_copy']['features'] == 'duplicate of conotoxin'
    assert 'hbb30' in run_kit('batch', 'status', out).stdout

    flag.unlink()                                          # the fix
    res = run_kit('batch', 'retry', out, '--no-progress')
    assert res.returncode == 0, res.stdout
    assert 'retrying 1 failed unit(s): hbb30' in res.stdout
    st = statuses(out)
    assert {r['stage'] for r in st.values()} == {'done'}
    assert st['hbb30']['features'] == 'cpu_stage'
    watch = run_kit('batch', 'status', out, '--watch', '1')      # all finished: prints once, returns
    assert watch.returncode == 0 and 'done 4' in watch.stdout, watch.stdout
    for name in st:
        for f in ('ranked_0.pdb', 'ranked_0.cif', 'plddt.png', 'pae.png', 'msa_coverage.png'):
            assert os.path.exists(os.path.join(out, name, f)), (name, f)
    # The best model's scores in status (table and JSON), times in ISO-8601.
    scores = json.load(open(os.path.join(out, 'conotoxin', 'scores.json')))['models']['model_1_ptm']
    for name in ('conotoxin', 'conotoxin_copy'):
        assert st[name]['best'] == dict(model='model_1_ptm', **{k: scores[k] for k in (
            'mean_plddt', 'ptm', 'iptm', 'ranking_confidence')}), st[name]
    assert re.match(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$', st['conotoxin']['predict_end'])
    table = [l.split() for l in run_kit('batch', 'status', out).stdout.splitlines() if l.startswith('conotoxin ')]
    assert table[0][-3:] == ['model_1_ptm', '%.1f' % scores['mean_plddt'], '%.3f' % scores['ptm']], table
    dup_meta = json.load(open(os.path.join(out, 'conotoxin_copy', 'features.meta.json')))
    assert dup_meta['target'] == 'conotoxin_copy' and dup_meta['features_source'] == 'duplicate of conotoxin'
    # One CPU stage per unique sequence (the duplicate ran none), each finished before its prediction.
    logs = sorted(f for f in os.listdir(os.path.join(out, '.batch', 'logs')) if f.startswith('msa-'))
    assert logs == ['msa-conotoxin.log', 'msa-hbb30.log', 'msa-hbb_40.log']
    for name in ('conotoxin', 'hbb30', 'hbb_40'):
        assert st[name]['predict_start'] >= st[name]['msa_end']

    res = run_kit('batch', 'report', out)
    assert res.returncode == 0, res.stdout
    report = json.load(open(os.path.join(out, 'report.json')))
    assert (report['done'], report['duplicates'], report['cpu_stage_runs'], report['unique_done']) == (4, 1, 3, 3)
    assert 0 < report['worker_busy_fraction'] <= 1 and report['compiles'] >= 1
    assert report['gpu_busy_fraction'] is None and not report['accelerator_used']   # no GPU on this machine
    assert round(report['proteins_per_hour'] * report['wall_s'] / 3600.0) == 3   # unique targets, not 4
    import csv
    with open(os.path.join(out, 'summary.csv')) as f:
        rows = {r['target']: r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted(st) and rows['conotoxin_copy']['duplicate_of'] == 'conotoxin'
    assert {r['best_model'] for r in rows.values()} == {'model_1_ptm'}
    assert float(rows['conotoxin']['mean_plddt']) == round(scores['mean_plddt'], 2)
    with open(os.path.join(out, 'report.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    res = run_kit(*submit)                                # a second submit: nothing left to do
    assert res.returncode == 0 and 'every target is done already' in res.stdout, res.stdout
    stored = json.load(open(os.path.join(out, '.batch', 'batch.json')))
    res = run_kit(*submit, '--num-recycle', '1')          # other options: refused, nothing recorded
    assert res.returncode == 2 and 'gpu_options.num_recycle: 0 -> 1' in res.stdout and '--force' in res.stdout
    assert json.load(open(os.path.join(out, '.batch', 'batch.json'))) == stored


def test_sigkilled_local_batch_is_resumed_by_a_second_submit(targets, full_data_dir, tmp_path):
    out = str(tmp_path / 'out')
    fasta = tmp_path / 'two.fasta'
    fasta.write_text('>cono\n%s\n>hbb\n%s\n' % (sequence(targets['conotoxin']), sequence(targets['hbb_human'])[:36]))
    cmd = ('batch', 'submit', '--fasta', fasta, '--output-dir', out, '--data-dir', full_data_dir, *BATCH_GPU,
           '--no-plots')
    proc = subprocess.Popen([sys.executable, '-m', 'fold_runtime'] + [str(a) for a in cmd], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = os.path.join(out, '.batch', 'state')
    deadline = time.time() + 300
    while not any(f.endswith('.predict.json') for f in (os.listdir(state) if os.path.isdir(state) else ())):
        assert time.time() < deadline and proc.poll() is None, 'the batch never reached the GPU stage'
        time.sleep(0.5)
    time.sleep(2)
    subprocess.run(['pkill', '-KILL', '-f', out])          # the node dies: every process of the batch
    proc.wait()
    assert any(s['stage'] != 'done' for s in statuses(out).values())
    res = run_kit(*cmd)
    assert res.returncode == 0, res.stdout
    assert {r['stage'] for r in statuses(out).values()} == {'done'}
    for name in ('cono', 'hbb'):
        assert (tmp_path / 'out' / name / 'ranked_0.pdb').read_text().rstrip().endswith('END')
        assert not list((tmp_path / 'out' / name).glob('*.png'))      # --no-plots, through the batch


FINISH_FILES = ('relaxed_*', 'ranked_*', 'ranking_debug.json', 'relax_metrics.json', 'scores.json', '*.png')


def test_relax_pool_is_resumed_after_a_kill_and_writes_what_inline_relax_writes(conotoxin_predicted, targets,
                                                                                full_data_dir, tmp_path):
    """The shared alphafold-predict run (inline relax) with its relaxed and ranked files removed: its
    models are kept (same features, options, no padding), so the batch worker only hands the target
    to its relax pool (the site's relax_workers, a spawned process). The batch is SIGKILLed, pool
    included, once the target is relaxing: not done; a second submit finishes it, with the inline
    run's files: byte for byte, except relaxed coordinates, which no two relaxations share
    (test_predict_parity.py: PDBFixer adds atoms at random), so there the same model, residues and
    heavy atoms."""
    from test_predict_parity import heavy_atom_names
    import shutil
    reference = conotoxin_predicted[0]
    out = tmp_path / 'out'
    shutil.copytree(str(reference), str(out / 'conotoxin'))
    for pattern in FINISH_FILES:
        for path in (out / 'conotoxin').glob(pattern):
            path.unlink()
    conf = tmp_path / 'site.conf'
    conf.write_text('[batch]\nrelax_workers = 2\n')
    env = dict(os.environ, ALPHAFOLD_SITE_CONFIG=str(conf))
    cmd = ('batch', 'submit', '--fasta', targets['conotoxin'], '--output-dir', out, '--data-dir', full_data_dir,
           *GPU_ARGS, '--buckets', 'none', '--no-progress')
    proc = subprocess.Popen([sys.executable, '-m', 'fold_runtime'] + [str(a) for a in cmd], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = out / '.batch' / 'state' / 'conotoxin.predict.json'
    deadline = time.time() + 300
    while not (record.exists() and json.loads(record.read_text())['state'] == 'relaxing'):
        assert time.time() < deadline and proc.poll() is None, 'the target never reached the relax pool'
        time.sleep(0.1)
    batch_pids = subprocess.run(['pgrep', '-f', str(out)], stdout=subprocess.PIPE, text=True).stdout.split()
    for pid in batch_pids:                                  # the node dies: the pool's processes too
        subprocess.run(['pkill', '-KILL', '-P', pid])
    subprocess.run(['pkill', '-KILL', '-f', str(out)])
    proc.wait()
    assert statuses(out)['conotoxin']['stage'] == 'relaxing'
    res = run_kit(*cmd, env=env)
    assert res.returncode == 0, res.stdout
    st = statuses(out)['conotoxin']
    assert st['stage'] == 'done' and st['relax_s'] > 0 and st['relax_end'] > st['relax_start']
    worker = json.loads(next((out / '.batch' / 'timings').glob('worker-*.json')).read_text())
    assert worker['relax_s'] == st['relax_s'] and worker['busy_s'] == 0.0   # the models were kept: nothing predicted
    made = sorted(p.name for pattern in FINISH_FILES for p in (out / 'conotoxin').glob(pattern))
    assert made == sorted(p.name for pattern in FINISH_FILES for p in reference.glob(pattern))
    best = json.loads((reference / 'ranking_debug.json').read_text())['order'][0]
    relaxed = ('ranked_0.pdb', 'relaxed_%s.pdb' % best)
    assert relaxed[1] in made
    for name in relaxed:
        assert heavy_atom_names((out / 'conotoxin' / name).read_text()) == heavy_atom_names((reference / name).read_text())
    assert (out / 'conotoxin' / relaxed[0]).read_text() == (out / 'conotoxin' / relaxed[1]).read_text()
    metrics = json.loads((out / 'conotoxin' / 'relax_metrics.json').read_text())
    assert sorted(metrics) == [best] and 'error' not in metrics[best]
    for name in set(made) - {'relax_metrics.json'}:
        if not name.endswith(('.png', '.cif')) and name not in relaxed:
            assert (out / 'conotoxin' / name).read_bytes() == (reference / name).read_bytes(), name


def test_a_relax_process_that_dies_fails_its_target_and_the_next_gets_a_new_pool(predicted_dir):
    """A pool process killed (as by the out-of-memory killer) fails the target it held, and the
    worker's next target is finished by a fresh pool instead of every later one failing."""
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool
    import pytest
    from fold_runtime.batch import relax_pool
    from fold_runtime.gpu_stage import predict
    stored = json.loads((predicted_dir / 'scores.json').read_text())
    scores, ranked = stored['models'], stored['order']
    job = predict.Ranking(str(predicted_dir), ranked, {n: scores[n]['ranking_confidence'] for n in ranked},
                          'plddts', scores, {}, 'none', False, None, {})
    pool = relax_pool.Pool(1, 0)
    held = pool.submit(job)
    for child in multiprocessing.active_children():   # the pool's one process, still starting
        child.kill()
    with pytest.raises(BrokenProcessPool):
        held.result()
    try:
        assert pool.submit(job).result()['error'] is None
    finally:
        pool.shutdown()
    assert json.loads((predicted_dir / 'scores.json').read_text()) == stored


def test_slurm_batch_arrays_throttle_order_and_dedupe(slurm, targets, full_data_dir, tmp_path):
    """The CPU array throttled to one task at a time (%1) on a 2-CPU node, one GPU worker job."""
    conf = tmp_path / 'site.conf'
    conf.write_text('[slurm]\ncpu_partition = nosuch\ngpu_partition = gpu\ncpus_per_task = 1\ngpu_cpus_per_task = 1\n'
                    'cpu_mem = 500M\ngpu_mem = 1500M\ncpu_time = 30:00\ngpu_time = 30:00\nmax_concurrent_msa = 1\n'
                    'gpu_workers = 1\n[cache]\nfeature_cache = %s\n' % (tmp_path / 'feature cache'))
    env = {'SLURM_CONF': slurm.conf, 'ALPHAFOLD_SITE_CONFIG': str(conf)}
    out = str(tmp_path / 'out')
    submit = ('batch', 'submit', '--fasta', *batch_inputs(targets, tmp_path), '--output-dir', out,
              '--data-dir', full_data_dir, *BATCH_GPU, '--executor', 'slurm', '--cpu-partition', 'cpu')
    dry = run_kit(*submit, '--dry-run', env=env)
    assert dry.returncode == 0, dry.stdout
    for line in ('#SBATCH --job-name=alphafold-msa', '#SBATCH --array=0-2%1', '#SBATCH --partition=cpu',
                 '#SBATCH --gres=gpu:1', '#SBATCH --dependency=afterany:<cpu-array-job-id>_0'):
        assert line in dry.stdout, line
    assert not os.path.exists(os.path.join(out, '.batch'))                 # nothing written, nothing submitted

    res = run_kit(*submit, '--wait', env=env, timeout=900)
    assert res.returncode == 0, res.stdout
    st = statuses(out)
    assert {r['stage'] for r in st.values()} == {'done'}
    assert st['conotoxin_copy']['features'] == 'duplicate of conotoxin'
    for name in st:
        assert os.path.exists(os.path.join(out, name, 'ranked_0.pdb')), name
    cached = [d for d in os.listdir(str(tmp_path / 'feature cache')) if not d.startswith('.')]
    assert sum(len(os.listdir(str(tmp_path / 'feature cache' / d))) for d in cached) == 3   # the site's cache
    job = json.load(open(os.path.join(out, '.batch', 'jobs.json')))[-1]
    assert sorted(job['msa_targets']) == ['conotoxin', 'hbb30', 'hbb_40']      # one CPU task per unique sequence
    assert slurm.field(job['msa_job'], 'JobName') == 'alphafold-msa'
    assert slurm.field(job['predict_job'], 'JobName') == 'alphafold-predict'
    assert slurm.field(job['msa_job'], 'ArrayTaskThrottle') == '1'
    intervals = msa_intervals(out, ['conotoxin', 'hbb30', 'hbb_40'])
    assert all(a[1] <= b[0] for a, b in zip(intervals, intervals[1:])), intervals   # %1 held
    assert slurm.field(job['msa_job'] + '_0', 'EndTime') <= slurm.field(job['predict_job'] + '_0', 'StartTime')
    for name in ('conotoxin', 'hbb30', 'hbb_40'):
        assert st[name]['predict_start'] >= st[name]['msa_end']                     # no GPU task before its CPU task
        assert st[name]['msa_job'].startswith(job['msa_job'] + '_')


def test_weights_are_checked_at_submit_and_a_worker_that_cannot_start_says_why(targets, full_data_dir, tmp_path):
    """Missing weights stop submit before any CPU stage. Weights that vanish after submit make the
    GPU worker fail at start: it records why on every target it would predict, and status shows it."""
    from fold_runtime.batch import cli, inputs, state
    from kit_common import site_config
    out = str(tmp_path / 'out')
    fasta = tmp_path / 'one.fasta'
    fasta.write_text('>cono\n%s\n' % sequence(targets['conotoxin']))
    data = tmp_path / 'data'
    data.mkdir()
    for name in os.listdir(full_data_dir):
        if name != 'params':
            os.symlink(os.path.join(full_data_dir, name), str(data / name))
    argv = ['--fasta', str(fasta), '--output-dir', out, '--data-dir', str(data)] + list(BATCH_GPU)
    res = run_kit('batch', 'submit', *argv)
    assert res.returncode == 3 and 'weights file missing' in res.stdout, res.stdout
    assert not os.path.exists(os.path.join(out, '.batch'))
    args, site = cli.submit_parser().parse_args(argv), site_config.SiteConfig()
    found = inputs.read([str(fasta)])
    state.save(out, state.record(found, inputs.units(found), *cli.stage_options_from(args),
                                 cli.settings_from(args, site)))
    res = run_kit('batch', 'gpu-worker', out, '--executor', 'local', '--cpu-stage', str(tmp_path / 'no-flag-yet'))
    assert res.returncode == 3, res.stdout
    row = statuses(out)['one']   # a single-record file names its target
    assert row['stage'] == 'failed' and 'could not start' in row['error'] and 'params_model_1_ptm.npz' in row['error']


def test_a_job_slurm_can_never_start_fails_at_once(slurm, targets, full_data_dir, tmp_path):
    """A CPU stage asking for more time than its partition allows stays pending forever (Slurm
    22.05 says PartitionConfig or PartitionTimeLimit): submit --wait and status say so at once, with the fix."""
    conf = tmp_path / 'site.conf'
    conf.write_text('[slurm]\ncpu_partition = short\ncpu_time = 2:00:00\ncpus_per_task = 1\ncpu_mem = 500M\n'
                    'gpu_cpus_per_task = 1\ngpu_mem = 500M\ngpu_time = 5:00\n')
    env = {'SLURM_CONF': slurm.conf, 'ALPHAFOLD_SITE_CONFIG': str(conf)}
    fasta = tmp_path / 'one.fasta'
    fasta.write_text('>cono\n%s\n' % sequence(targets['conotoxin']))
    out = str(tmp_path / 'out')
    try:
        res = run_kit('batch', 'submit', '--fasta', fasta, '--output-dir', out, '--data-dir', full_data_dir,
                      *BATCH_GPU, '--executor', 'slurm', '--wait', env=env, timeout=120)
        assert res.returncode == 2 and 'will never start' in res.stdout, res.stdout
        assert re.search(r'job \d+_\S* pending \(Partition(Config|TimeLimit)\)', res.stdout), res.stdout
        assert 'cpu_time' in res.stdout and 'alphafold-batch cancel' in res.stdout
        res = run_kit('batch', 'status', out, env=env)
        assert res.returncode == 2 and 'will never start' in res.stdout
    finally:
        run_kit('batch', 'cancel', out, env=env)


def test_batch_takes_a_directory_of_precomputed_msas(targets, full_data_dir, tmp_path):
    """--msa DIR: each target's DIR/<target>.a3m replaces its MSA searches and is recorded by its
    SHA-256; the same sequence with another A3M is another unit, with the same A3M a duplicate; a
    missing file is refused at submit, naming it. --no-templates and --num-seeds reach the batch's
    CPU and GPU stages through batch.json (with templates the --msa route runs hhsearch), and a
    resubmit without them is refused as other options."""
    import hashlib
    cono = sequence(targets['conotoxin'])
    fasta = tmp_path / 'cono.fasta'
    fasta.write_text(''.join('>%s\n%s\n' % (n, cono) for n in ('short', 'long', 'same')))
    msas = tmp_path / 'msas'
    msas.mkdir()
    rows = ['>hit%d\n%s\n' % (i, cono[:i] + '-' * 3 + cono[i + 3:]) for i in range(1, 6)]
    for name, n in (('short', 1), ('long', 5), ('same', 1)):
        (msas / (name + '.a3m')).write_text('>query\n%s\n' % cono + ''.join(rows[:n]))
    out = str(tmp_path / 'out')
    with_templates = ('batch', 'submit', '--fasta', fasta, '--output-dir', out, '--data-dir', full_data_dir,
                      '--msa', msas, *BATCH_GPU, '--num-seeds', '2')
    submit = with_templates[:-2] + ('--no-templates',)
    res = run_kit(*submit, '--num-seeds', '2')
    assert res.returncode == 0, res.stdout
    assert '3 targets, 2 unique inputs' in res.stdout
    logs = os.listdir(os.path.join(out, '.batch', 'logs'))
    assert sorted(f for f in logs if f.startswith('msa-')) == ['msa-long.log', 'msa-short.log']
    for name, n in (('short', 1), ('long', 5)):
        tdir = os.path.join(out, name)
        timings = json.load(open(os.path.join(tdir, 'timings.json')))
        assert not [k for k in timings if k.startswith('search_')], timings    # no search ran
        assert json.load(open(os.path.join(tdir, 'features.meta.json')))['msa_sha256'] == \
            hashlib.sha256((msas / (name + '.a3m')).read_bytes()).hexdigest()
        with open(os.path.join(tdir, 'features.pkl'), 'rb') as f:
            features = pickle.load(f)
        assert features['num_alignments'][0] == n + 1 and features['template_domain_names'].shape == (0,)
        assert not os.path.exists(os.path.join(tdir, 'msas', 'pdb_hits.hhr'))      # no template search
        order = json.load(open(os.path.join(tdir, 'ranking_debug.json')))['order']
        assert sorted(order) == ['model_1_ptm_pred_0', 'model_1_ptm_pred_1']
    st = statuses(out)
    assert st['short']['best']['model'] == json.load(open(os.path.join(out, 'short', 'ranking_debug.json')))['order'][0]
    assert st['same']['primary'] == 'short' and st['same']['stage'] == 'done'
    assert os.path.exists(os.path.join(out, 'same', 'ranked_0.pdb'))
    res = run_kit(*submit)
    assert res.returncode == 2 and 'gpu_options.num_seeds: 2 -> 1' in res.stdout, res.stdout
    res = run_kit(*with_templates)
    assert res.returncode == 2 and 'cpu_options.templates: False -> True' in res.stdout, res.stdout

    (msas / 'long.a3m').unlink()
    res = run_kit(*submit[:5], str(tmp_path / 'out2'), *submit[6:])
    assert res.returncode == 2 and 'has no MSA for 1 of the 3 targets: long.a3m' in res.stdout, res.stdout
    assert not os.path.exists(str(tmp_path / 'out2'))


def slurm_site(tmp_path, extra=''):
    conf = tmp_path / 'site.conf'
    conf.write_text('[slurm]\ncpu_partition = cpu\ngpu_partition = gpu\ncpus_per_task = 1\ngpu_cpus_per_task = 1\n'
                    'cpu_mem = 500M\ngpu_mem = 1500M\ncpu_time = 30:00\ngpu_time = 30:00\ngpu_workers = 1\n' + extra)
    return str(conf)


def test_slurm_batch_in_a_directory_with_percent_and_space(slurm, targets, full_data_dir, tmp_path):
    """Slurm expands '%' in #SBATCH --output (every job failed, with no log) and an unquoted space
    broke the line (sbatch refused the script): escaped and quoted now. What cannot be quoted is
    refused before anything is written."""
    env = {'SLURM_CONF': slurm.conf, 'ALPHAFOLD_SITE_CONFIG': slurm_site(tmp_path)}
    fasta = tmp_path / 'cono.fasta'
    fasta.write_text('>cono\n%s\n' % sequence(targets['conotoxin']))
    submit = ('batch', 'submit', '--fasta', fasta, '--data-dir', full_data_dir, *BATCH_GPU, '--executor', 'slurm')
    out = str(tmp_path / 'run 100%u $(id) x')
    res = run_kit(*submit, '--output-dir', out, env=env)
    assert res.returncode == 0, res.stdout
    job = json.load(open(os.path.join(out, '.batch', 'jobs.json')))[-1]
    slurm.run('scancel', job['predict_job'])           # the CPU stage's log is what is under test
    assert slurm.wait([job['msa_job'] + '_0'], timeout=300) == {job['msa_job'] + '_0': 'COMPLETED'}
    log = os.path.join(out, '.batch', 'logs', 'msa-%s_0.log' % job['msa_job'])
    assert 'cono: wrote' in open(log).read()
    assert statuses(out)['cono']['stage'] == 'ready'
    bad = str(tmp_path / 'a "quoted" dir')
    res = run_kit(*submit, '--output-dir', bad, env=env)
    assert res.returncode == 2 and 'a Slurm job script cannot carry' in res.stdout, res.stdout
    assert not os.path.exists(bad)


def test_slurm_arrays_over_max_array_size_are_split_and_keep_the_throttle(slurm, full_data_dir, tmp_path):
    """1,500 unique targets on a cluster with Slurm's default MaxArraySize (1001) failed at submit
    ("Invalid job array specification"). Now two arrays, the second after the first, each %3. Held
    (--hold): only the submission is under test; cancel then stops every piece."""
    import random
    rng = random.Random(0)
    fasta = tmp_path / 'many.fasta'
    fasta.write_text(''.join('>t%d\n%s\n' % (i, ''.join(rng.choice('ACDEFGHIKLMNPQRSTVWY') for _ in range(30)))
                             for i in range(1500)))
    env = {'SLURM_CONF': slurm.conf,
           'ALPHAFOLD_SITE_CONFIG': slurm_site(tmp_path, 'max_concurrent_msa = 3\nextra_sbatch = --hold\n')}
    out = str(tmp_path / 'out')
    res = run_kit('batch', 'submit', '--fasta', fasta, '--output-dir', out, '--data-dir', full_data_dir, *BATCH_GPU,
                  '--executor', 'slurm', env=env)
    assert res.returncode == 0, res.stdout
    assert "in pieces of at most 1001, the cluster's MaxArraySize" in res.stdout
    job = json.load(open(os.path.join(out, '.batch', 'jobs.json')))[-1]
    first, second = job['msa_job'].split(',')
    assert slurm.field(first, 'ArrayTaskId') == '0-1000%3' and slurm.field(second, 'ArrayTaskId') == '0-498%3'
    assert slurm.field(second, 'Dependency').startswith('afterany:%s' % first)
    assert slurm.field(job['predict_job'], 'Dependency').startswith('afterany:%s_0' % first)
    scripts = os.path.join(out, '.batch', 'scripts')
    assert ' t1000)' in open(os.path.join(scripts, 'msa.sbatch')).read()
    assert 'targets=(t1001 ' in open(os.path.join(scripts, 'msa-2.sbatch')).read()
    res = run_kit('batch', 'cancel', out, env=env)
    assert res.returncode == 0 and first in res.stdout and second in res.stdout, res.stdout
    assert not slurm.run('squeue', '-h', '-j', ','.join([first, second, job['predict_job']])).stdout.strip()
