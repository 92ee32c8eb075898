"""Options are typed objects: checked before any work, stored by a batch as JSON and read back
equal; a batch written by the previous (argv-storing) version is refused with a clear message."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from fold_runtime import options
from fold_runtime.batch import state
from kit_common import site_config, typed
from kit_common.errors import KitError


def kit_args(*args, **env):
    return subprocess.run([sys.executable, '-m', 'fold_runtime'] + list(args), cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, env=dict(os.environ, **env))


def test_options_round_trip_through_json():
    cpu = options.cpu_options({'data_dir': '/d', 'cpus': 6, 'timeout': 30.0,
                               'binary_paths': {'jackhmmer': '/x/jackhmmer', 'kalign': None}})
    gpu = options.gpu_options({'model_preset': 'monomer_ptm', 'models': 'model_1', 'num_recycle': 1,
                               'buckets': (64, 128), 'use_gpu_relax': None})
    settings = options.batch_settings({'executor': 'slurm', 'buckets': None,
                                       'slurm': typed.to_dict(site_config.Slurm(gpu_workers=2))})
    for obj, build in ((cpu, options.cpu_options), (gpu, options.gpu_options), (settings, options.batch_settings)):
        assert build(json.loads(json.dumps(typed.to_dict(obj)))) == obj
    assert settings.slurm.gpu_workers == 2 and gpu.buckets == (64, 128)


@pytest.mark.parametrize('values, words', [
    ({'num_recycle': -1}, 'num_recycle must be between 0 and 100'),
    ({'num_recycle': 100000000}, 'num_recycle must be between 0 and 100'),
    ({'mem_fraction': 0.0}, 'mem_fraction must be above 0'),
    ({'memory_mode': 'unifed'}, "memory mode 'unifed'"),
    ({'unified_threshold': 0}, 'unified_threshold must be at least 1, got 0'),
    ({'mem_fraction': 65.0}, 'mem_fraction must be above 0 and at most 64, got 65'),
    ({'models': 'model_9'}, 'unknown model(s)'),
    ({'models': 'model_1_ptm,model_2_ptm'}, 'these are monomer_ptm models: pass --model-preset monomer_ptm'),
    ({'random_seed': '1'}, "random_seed = '1' is not an integer"),
    ({'modelpreset': 'monomer'}, 'unknown setting(s) modelpreset'),
    ({'num_seeds': 0}, 'num_seeds must be at least 1, got 0'),
])
def test_bad_gpu_options_are_refused(values, words):
    with pytest.raises(KitError) as err:
        options.gpu_options(values)
    assert words in str(err.value)


def test_multimer_predictions_per_model_is_num_seeds_with_alphafold_s_default():
    parser = options.gpu_stage_parser('alphafold-predict', '')
    gpu = lambda *a: options.gpu_options_from_args(parser.parse_args(['--target-dir', 'd'] + list(a)))
    assert gpu('--model-preset', 'multimer').num_seeds == 5 and gpu('--model-preset', 'monomer').num_seeds == 1
    assert gpu('--model-preset', 'multimer', '--num_multimer_predictions_per_model', '2').num_seeds == 2
    assert gpu('--model-preset', 'multimer', '--num-seeds', '3').num_seeds == 3


def test_multimer_models_v3_by_default_and_earlier_versions_by_name():
    from types import SimpleNamespace
    from fold_runtime.gpu_stage import predict, weights
    assert weights.select_models('multimer', 'model_2') == ['model_2_multimer_v3']
    chosen = weights.select_models('multimer', 'model_1_multimer_v2,model_3_multimer,model_3')
    assert chosen == ['model_3_multimer_v3', 'model_3_multimer', 'model_1_multimer_v2']
    # run_alphafold.py: <model>_pred_<k> even with one prediction per model; prediction i of the
    # preset's n = 5 * N gets seed i + random_seed * n.
    models = SimpleNamespace(names=chosen[:2], num_preset_models=5, pred_names=True)
    assert list(predict.predictions(models, 1, 2)) == [('model_3_multimer_v3_pred_0', 'model_3_multimer_v3', 12),
                                                       ('model_3_multimer_pred_0', 'model_3_multimer', 12)]
    assert [seed for _, _, seed in predict.predictions(models, 5, 1)][:6] == [35, 36, 37, 38, 39, 35]


@pytest.mark.parametrize('values, words', [
    ({'max_template_date': '2022-13-45'}, 'not a date of the form YYYY-MM-DD'),
    ({'timeout': 0.0}, 'timeout must be a positive number'),
    ({'cpus': 0}, 'cpus must be at least 1'),
    ({'db_preset': 'small'}, "db_preset 'small'"),
    ({'msa_mode': 'hhblits'}, "msa_mode 'hhblits' is not one of jackhmmer, mmseqs2"),
    ({'msa_mode': 'mmseqs2', 'msa_paths': ('/x.a3m',)}, '--msa gives the MSA and --msa-mode mmseqs2 searches'),
    ({'msa_mode': 'mmseqs2', 'db_preset': 'reduced_dbs'}, 'leave --db-preset out'),
])
def test_bad_cpu_options_are_refused(values, words):
    with pytest.raises(KitError) as err:
        options.cpu_options(values)
    assert words in str(err.value)


@pytest.mark.parametrize('args, env, words', [
    (('--max-template-date', '2022-13-45'), {}, 'YYYY-MM-DD'),
    (('--num-recycle', '-1'), {}, 'num_recycle must be between'),
    (('--timeout', '0'), {}, 'timeout must be a positive'),
    ((), {'ALPHAFOLD_MEM_FRACTION': 'lots'}, "ALPHAFOLD_MEM_FRACTION='lots' is not a number"),
    ((), {'ALPHAFOLD_UNIFIED_THRESHOLD': 'abc'}, "ALPHAFOLD_UNIFIED_THRESHOLD='abc' is not an integer"),
    ((), {'ALPHAFOLD_MEMORY_MODE': 'unifed'}, "ALPHAFOLD_MEMORY_MODE='unifed'"),
    (('--num-seeds', '0'), {}, 'num_seeds must be at least 1'),
    (('--model-preset', 'multimer', '--num-multimer-predictions-per-model', '0'), {}, 'num_seeds must be at least 1'),
    (('--model-preset', 'multimer', '--models', 'model_1_multimer_v4'), {}, 'unknown model(s) for --model-preset multimer'),
    (('--msa', '/no/such.a3m'), {}, '--msa /no/such.a3m cannot be read for x'),
    (('--msa', 'a.a3m', 'b.a3m'), {}, '--msa gives 2 file(s) for 1 target(s)'),
    # nan passed every "<= 0" check and switched the limit off; 2^64 overflowed after the weights loaded.
    (('--timeout', 'nan'), {}, 'timeout = nan is not a finite number'),
    (('--progress-interval', 'nan'), {}, 'progress_interval = nan is not a finite number'),
    (('--progress-interval', '1e-6'), {}, 'progress_interval must be a positive number of seconds, at least 0.1'),
    (('--random-seed', str(2 ** 64)), {}, 'random_seed must be between'),
    (('--num-seeds', '1000000'), {}, 'num_seeds must be at most 1000 predictions per model'),
    (('--msa-mode', 'hmmer'), {}, "invalid choice: 'hmmer'"),
])
def test_commands_check_options_and_variables_before_any_work(tmp_path, args, env, words):
    """No data directory exists: a run that got past validation would fail on it instead."""
    fasta = tmp_path / 'x.fasta'
    fasta.write_text('>x\nMKV\n')
    res = kit_args('run', '--fasta', str(fasta), '--output-dir', str(tmp_path / 'out'),
                   '--data-dir', str(tmp_path / 'nothing'), *args, **env)
    assert res.returncode == 2 and words in res.stdout and 'Traceback' not in res.stdout, res.stdout
    assert not (tmp_path / 'out').exists()


def test_a_batch_from_the_previous_version_is_refused(tmp_path):
    (tmp_path / '.batch').mkdir()
    (tmp_path / '.batch' / 'batch.json').write_text(json.dumps({'targets': [], 'run_args': ['--cpus', '2'],
                                                                'settings': {}}))
    with pytest.raises(KitError) as err:
        state.load(str(tmp_path))
    assert 'older version of the kit' in str(err.value) and 'new --output-dir' in err.value.fix
    res = kit_args('batch', 'status', str(tmp_path))
    assert res.returncode == 2 and 'older version' in res.stdout and 'Traceback' not in res.stdout


def test_random_seeds_stop_where_the_predictions_seeds_would_leave_int64():
    """Prediction i of n gets seed i + random_seed * n: the largest must stay below 2^63."""
    top = 2 ** 63 // 5                                   # monomer_ptm, one seed: n = 5
    assert options.gpu_options({'model_preset': 'monomer_ptm', 'random_seed': top - 1}).random_seed == top - 1
    for seed in (top, -top - 1):
        with pytest.raises(KitError) as err:
            options.gpu_options({'model_preset': 'monomer_ptm', 'random_seed': seed})
        assert 'random_seed must be between %d and %d' % (-top, top - 1) in str(err.value)
    with pytest.raises(KitError):                        # 25 predictions per target: a lower bound
        options.gpu_options({'model_preset': 'monomer_ptm', 'random_seed': top - 1, 'num_seeds': 5})


def test_msa_mode_is_opt_in_and_explained():
    """jackhmmer (DeepMind's searches) unless asked; --explain says what mmseqs2 changes."""
    parser = options.cpu_stage_parser()
    assert options.cpu_options_from_args(parser.parse_args(['--fasta', 'x.fa', '--output-dir', 'o'])).msa_mode == \
        'jackhmmer'
    res = kit_args('msa', '--explain')
    assert res.returncode == 0 and '--msa-mode mmseqs2' in res.stdout and 'ColabFold 1.6.2' in res.stdout, res.stdout
