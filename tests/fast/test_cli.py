"""Command lines and inputs, without databases or models."""
import json
import os
import subprocess
import sys

from conftest import ROOT
from fold_runtime.cpu_stage.searches import split_cpus


def test_cpu_split_follows_alphafold_8_8_4():
    assert split_cpus(20) == [8, 8, 4]
    assert split_cpus(40) == [16, 16, 8]
    assert split_cpus(2) == [1, 1, 1]


def test_help_documents_options_and_exit_codes(kit):
    res = kit('msa', '--help')
    assert res.returncode == 0
    for word in ('--fasta', '--db-preset', '--cpus', '--serial', '--timeout', '--overwrite',
                 '--jackhmmer-binary', 'exit status'):
        assert word in res.stdout


def test_each_command_shows_only_its_own_options(kit, tmp_path):
    """alphafold-predict --help lists none of the CPU-stage-only flags, yet accepts them (so the CPU
    and GPU job scripts can pass the same arguments); alphafold-msa --help none of the GPU stage's;
    alphafold-batch screen --help no --fasta (which it refuses) but its own --baits."""
    import re
    from fold_runtime import option_table as table
    shown = {cmd: set(re.findall(r'^  (--[a-z0-9-]+)', kit(*cmd, '--help').stdout, re.M))
             for cmd in (('predict',), ('msa',), ('run',), ('batch', 'screen'))}
    for opt in table.OPTIONS:
        if table.SCREEN not in opt.stages:
            assert (opt.flag in shown[('predict',)]) == (table.GPU in opt.stages), opt.flag
            assert (opt.flag in shown[('msa',)]) == (table.CPU in opt.stages), opt.flag
            assert opt.flag in shown[('run',)]
    assert {'--cpus', '--serial', '--feature-cache', '--jackhmmer-binary'}.isdisjoint(shown[('predict',)])
    assert {'--db-preset', '--msa', '--models', '--no-gpu-relax'} <= shown[('predict',)]   # checked against the meta
    assert '--fasta' not in shown[('batch', 'screen')] and {'--baits', '--output-dir'} <= shown[('batch', 'screen')]
    res = kit('predict', '--target-dir', str(tmp_path / 'none'), '--cpus', '4', '--jackhmmer_binary_path', '/x')
    assert res.returncode != 0 and 'unrecognized' not in res.stdout and 'none' in res.stdout, res.stdout


def test_inputs_are_named_uniquely_and_deduplicated(tmp_path):
    from fold_runtime.batch import inputs as bi
    (tmp_path / 'one.fasta').write_text('>whatever\nMKV\n')
    (tmp_path / 'multi.fa').write_text('>x first\nMKV\n>X second\nACD\n>we/ird:name\nACD\n>x\nEEE\n')
    (tmp_path / 'notes.txt').write_text('not a FASTA file')
    targets = bi.read([str(tmp_path)])
    assert [t.name for t in targets] == ['x', 'X_2', 'we_ird_name', 'x_3', 'one']
    groups = bi.units(targets)
    assert {k: [t.name for t in v] for k, v in groups.items()} == {
        'x': ['x', 'one'], 'X_2': ['X_2', 'we_ird_name'], 'x_3': ['x_3']}


def test_a_meta_of_another_shape_is_a_clear_mismatch(tmp_path):
    import pytest
    from fold_runtime import meta
    from kit_common.errors import KitError
    for text in ('[]', '{"target": "x"}', '"text"'):
        (tmp_path / meta.META_FILE).write_text(text)
        with pytest.raises(KitError) as err:
            meta.load(str(tmp_path))
        assert err.value.exit_code == 6 and 'another shape' in err.value.problem and '--overwrite' in err.value.fix


def test_submit_stores_absolute_paths(tmp_path, monkeypatch):
    from fold_runtime.batch import cli
    monkeypatch.chdir(tmp_path)
    args = cli.submit_parser().parse_args(['--fasta', 'x.fa', '--output-dir', 'out', '--data-dir', 'data',
                                           '--feature-cache', 'cache', '--jackhmmer-binary', 'bin/jackhmmer',
                                           '--compile-cache-dir', 'jax'])
    cpu, gpu = cli.stage_options_from(args)
    assert cpu.data_dir == gpu.data_dir == str(tmp_path / 'data')
    assert cpu.feature_cache == str(tmp_path / 'cache') and gpu.compile_cache_dir == str(tmp_path / 'jax')
    assert cpu.binary_paths['jackhmmer'] == str(tmp_path / 'bin' / 'jackhmmer')


def test_submit_records_the_inputs_options_and_checks_the_msa_directory(tmp_path, monkeypatch):
    """--no-templates, --num-seeds and --msa reach batch.json's typed options (so a resubmit compares
    them); --msa is one directory, and a file is refused before any work."""
    from fold_runtime import options
    from fold_runtime.batch import cli, state
    monkeypatch.chdir(tmp_path)
    def stored(*extra):
        args = cli.submit_parser().parse_args(['--fasta', 'x.fa', '--output-dir', 'out'] + list(extra))
        cpu, gpu = cli.stage_options_from(args)
        return state.record([], {}, cpu, gpu, options.BatchSettings())
    new = stored('--no-templates', '--num-seeds', '3')
    assert state.stored_options(new)[0].templates is False and state.stored_options(new)[1].num_seeds == 3
    old = stored()
    del old['cpu_options']['templates'], old['gpu_options']['num_seeds']      # a batch.json from before
    assert state.option_changes(old, new) == [
        'cpu_options.templates: True -> False', 'gpu_options.num_seeds: 1 -> 3']
    assert state.option_changes(old, stored('--msa', 'msas')) == [
        "cpu_options.msa_paths: [] -> ['%s']" % (tmp_path / 'msas')]
    (tmp_path / 'x.fa').write_text('>x\nMKV\n')
    (tmp_path / 'x.a3m').write_text('>x\nMKV\n')
    res = subprocess.run([sys.executable, '-m', 'fold_runtime', 'batch', 'submit', '--fasta', 'x.fa',
                          '--output-dir', 'out', '--msa', 'x.a3m'], cwd=str(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert res.returncode == 2 and 'alphafold-batch --msa takes one directory, not ' in res.stdout, res.stdout
    assert 'named <target>.a3m' in res.stdout and 'Traceback' not in res.stdout
    assert not (tmp_path / 'out').exists()


def test_a_local_run_is_alive_only_as_the_same_process_on_the_same_host():
    """A recycled pid (same number, another start time) or another host is not the batch's run."""
    import dataclasses
    import socket
    import subprocess
    from fold_runtime.batch.executors.local import LocalExecutor, process_start
    from fold_runtime.batch.state import Submission
    proc = subprocess.Popen(['sleep', '30'])
    try:
        record = Submission('local', pid=proc.pid, host=socket.gethostname(), pid_start=process_start(proc.pid))
        assert LocalExecutor.active(record) == ['local run pid %d' % proc.pid]
        assert LocalExecutor.active(dataclasses.replace(record, pid_start=record.pid_start - 1)) == []
        assert LocalExecutor.active(dataclasses.replace(record, host='another-node')) == []
    finally:
        proc.kill()
        proc.wait()
    assert LocalExecutor.active(record) == []


def test_a_target_over_a_stages_length_limit_is_refused_before_any_work(kit, tmp_path):
    """A 100,000-residue protein ran every search, then ended in a traceback (HHblits cuts a query at
    32,763 residues). Each stage's limit is checked first: exit 2 naming it, and nothing written."""
    from fold_runtime import fasta
    long, mid = tmp_path / 'long.fasta', tmp_path / 'mid.fasta'
    long.write_text('>long\n%s\n' % ('MKVLA' * 20000))
    mid.write_text('>mid\n%s\n' % ('MKVLA' * 2400))              # searchable, but past the model's limit
    out = tmp_path / 'out'
    cases = [(('msa', '--fasta', long), '100000 residues; the CPU stage searches at most 32763 per sequence'),
             (('run', '--fasta', mid), '12000 residues; the GPU stage predicts at most 10000 per target'),
             (('predict', '--fasta', mid), '12000 residues; the GPU stage predicts at most 10000 per target'),
             (('batch', 'submit', '--fasta', mid), '12000 residues; the GPU stage predicts at most 10000'),
             (('msa', '--model-preset', 'multimer', '--fasta', long), 'chain A of long has 100000 residues')]
    for args, words in cases:
        res = kit(*args, '--output-dir', out, '--data-dir', tmp_path)
        assert res.returncode == 2 and words in res.stdout, res.stdout
        assert 'split it into domains' in res.stdout and 'Traceback' not in res.stdout
        assert not out.exists()
    assert fasta.MAX_SEARCH_RESIDUES == 32763 and fasta.MAX_MODEL_RESIDUES == 10000   # as docs/stages.md documents


def test_predict_checks_the_length_its_features_record_before_reading_them(kit, tmp_path):
    from fold_runtime import distribution, meta
    tdir = tmp_path / 'big'
    tdir.mkdir()
    stack = dict(zip(('alphafold_distribution', 'alphafold_version'), distribution()))
    (tdir / meta.META_FILE).write_text(json.dumps(dict(stack, sequence_sha256='a' * 64, sequence_length=12000,
                                                       semantics='deepmind-v2.3.2')))
    (tdir / 'features.pkl').write_bytes(b'not read')
    res = kit('predict', '--target-dir', tdir, '--data-dir', tmp_path)
    assert res.returncode == 2 and 'target big has 12000 residues' in res.stdout, res.stdout
    assert str(tdir / meta.META_FILE) in res.stdout and 'unreadable' not in res.stdout


def test_msa_mode_is_one_option_of_msa_run_and_batch(tmp_path, monkeypatch, kit):
    """--msa-mode is declared once (fold_runtime/options.py) and reaches alphafold-run's and the
    batch's CPU-stage options, default jackhmmer; the batch records it in batch.json."""
    from fold_runtime import options
    from fold_runtime.batch import cli, state
    sources = [os.path.join(d, f) for d in ('fold_runtime', 'fold_runtime/batch', 'fold_runtime/cpu_stage')
               for f in os.listdir(os.path.join(ROOT, d)) if f.endswith('.py')]
    assert sum(open(os.path.join(ROOT, p)).read().count("'--msa-mode'") for p in sources) == 1
    for command in (('run',), ('batch', 'submit')):
        res = kit(*command, '--help')
        assert res.returncode == 0 and '--msa-mode {jackhmmer,mmseqs2}' in res.stdout, res.stdout
    monkeypatch.chdir(tmp_path)
    run = options.gpu_stage_parser('alphafold-run', '')
    for extra, mode in (([], 'jackhmmer'), (['--msa-mode', 'mmseqs2'], 'mmseqs2')):
        args = run.parse_args(['--fasta', 'x.fa', '--output-dir', 'out'] + extra)
        assert options.cpu_options_from_args(args).msa_mode == mode
        args = cli.submit_parser().parse_args(['--fasta', 'x.fa', '--output-dir', 'out'] + extra)
        cpu, gpu = cli.stage_options_from(args)
        assert state.record([], {}, cpu, gpu, options.BatchSettings())['cpu_options']['msa_mode'] == mode


def test_a_batch_never_switches_msa_mode_even_with_force(tmp_path):
    """A resubmit in the other mode would keep the finished targets' features of the first: refused,
    exit 6, --force or not; a batch.json from before the option counts as jackhmmer."""
    import pytest
    from fold_runtime import options
    from fold_runtime.batch import cli, state
    from kit_common.errors import KitError

    def record(mode):
        return state.record([], {}, options.cpu_options({'msa_mode': mode}), options.GpuStageOptions(),
                            options.BatchSettings())
    old = record('jackhmmer')
    del old['cpu_options']['msa_mode']
    state.save(str(tmp_path), old)
    for force in (False, True):
        with pytest.raises(KitError) as err:
            cli._refuse_changed_options(str(tmp_path), record('mmseqs2'), force)
        assert err.value.exit_code == 6 and 'makes its features with --msa-mode jackhmmer, not mmseqs2' in \
            err.value.problem and 'submit with --msa-mode jackhmmer' in err.value.fix
    cli._refuse_changed_options(str(tmp_path), record('jackhmmer'), False)   # the same mode resumes
