"""The site config is parsed and checked once: a typo or a wrong type is an error that names the
file, the key and the fix, never a silent default or a traceback."""
import dataclasses
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from kit_common import site_config
from kit_common.errors import KitError

EXAMPLE = os.path.join(ROOT, 'installer', 'site.conf.example')


def load_text(tmp_path, text):
    path = tmp_path / 'site.conf'
    path.write_text(text)
    return site_config.load(str(path))


def test_the_example_is_valid_and_typed():
    conf = site_config.load(EXAMPLE)
    assert conf.slurm.gpu_workers == 4 and conf.slurm.cpus_per_task == 20
    assert conf.memory.unified_threshold == 1200 and conf.memory.mem_fraction is None
    assert conf.batch.edges is None and conf.data.local_root == '/local/nvme/alphafold'


def test_the_example_names_every_key_with_its_default():
    """installer/site.conf.example is installed when no site config is given: each value it sets is
    the dataclass default (one source; the example only shows it), except its sample local_root."""
    import configparser
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(EXAMPLE)
    conf = site_config.load(EXAMPLE)
    assert set(parser.sections()) == set(site_config.SECTIONS)
    for name, cls in site_config.SECTIONS.items():
        assert set(parser[name]) == {f.name for f in dataclasses.fields(cls)}, name
        differ = {k for k in parser[name] if getattr(getattr(conf, name), k) != getattr(cls(), k)}
        assert differ == ({'local_root'} if name == 'data' else set()), (name, differ)


def test_no_file_means_the_defaults(monkeypatch):
    monkeypatch.delenv('ALPHAFOLD_SITE_CONFIG', raising=False)
    conf = site_config.load()
    assert conf.path is None and conf.slurm == site_config.Slurm()


@pytest.mark.parametrize('text, words', [
    ('[slurm]\ngpu_worker = 4\n', ['[slurm]', 'unknown setting(s) gpu_worker', 'known: ', 'gpu_workers']),
    ('[slurm]\ngpu_workers = four\n', ['gpu_workers', "'four' is not an integer"]),
    ('[slurm]\ngpu_workers = 0\n', ['gpu_workers must be at least 1']),
    # Accepted before, and written into #SBATCH lines that failed only at sbatch.
    ('[slurm]\ncpu_time = forever\n', ["cpu_time = 'forever' is not a Slurm time limit"]),
    ('[slurm]\ngpu_mem = lots\n', ["gpu_mem = 'lots' is not a Slurm memory size"]),
    ('[slurm]\nmax_concurrent_msa = %d\n' % 10 ** 23, ['max_concurrent_msa must be at least 1 and at most 100000']),
    ('[slurm]\ngpu_workers = %d\n' % 10 ** 9, ['gpu_workers must be at least 1 and at most 10000']),
    ('[memory]\nmem_fraction = lots\n', ['mem_fraction', 'is not a number']),
    ('[memory]\nmode = unifed\n', ["mode = 'unifed' is not one of auto, default, unified"]),
    # The same check as the GPU stage's options (site_config.memory_problem), with each one's wording.
    ('[memory]\nunified_threshold = 0\n', ['unified_threshold must be at least 1, got 0']),
    ('[memory]\nmem_fraction = 65\n', ['mem_fraction must be above 0 and at most 64, got 65']),
    ('[batch]\nlength_buckets = 64,big\n', ['length_buckets', 'positive residue counts']),
    ('[dataa]\nshared_root = /x\n', ['unknown section(s) [dataa]', 'known sections: data']),
    ('[data]\nshared_root = /x\n  /y\n', ['shared_root', 'is not one line of text']),
    # A pasted terminal colour code (the module once refused it as a copy of shared_root; now the site config does).
    ('[data]\nlocal_root = /l\x1b[31m\n', ['local_root', "without control characters (it holds '\\x1b')"]),
    ('shared_root = /x\n', ['malformed']),
])
def test_mistakes_name_the_file_the_key_and_the_fix(tmp_path, text, words):
    with pytest.raises(KitError) as err:
        load_text(tmp_path, text)
    message = str(err.value)
    assert str(tmp_path / 'site.conf') in message and 'fix:' in message
    for word in words:
        assert word in message, message
    assert err.value.exit_code == 2


def test_length_buckets_parse_to_edges(tmp_path):
    assert load_text(tmp_path, '[batch]\nlength_buckets = 128, 64\n').batch.edges == (64, 128)
    assert load_text(tmp_path, '[batch]\nlength_buckets = none\n').batch.edges == ()


@pytest.mark.parametrize('command', [['fold_runtime', 'msa', '--help'], ['fold_runtime', 'batch', 'submit', '--help'],
                                     ['data_sync', 'status', '--help']])
def test_help_works_whatever_the_site_config_holds(tmp_path, command):
    bad = tmp_path / 'bad.conf'
    bad.write_text('[slurm]\ngpu_workers = four\n')
    for conf in (bad, tmp_path / 'missing.conf'):
        res = subprocess.run([sys.executable, '-m'] + command, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True,
                             env=dict(os.environ, ALPHAFOLD_SITE_CONFIG=str(conf)))
        assert res.returncode == 0 and 'usage:' in res.stdout, res.stdout


def test_a_bad_site_config_is_a_clear_error_not_a_traceback(tmp_path):
    res = subprocess.run([sys.executable, '-m', 'data_sync', 'status'], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True,
                         env=dict(os.environ, ALPHAFOLD_SITE_CONFIG=str(tmp_path / 'missing.conf')))
    assert res.returncode == 2 and 'cannot read the site config' in res.stdout, res.stdout
    assert 'ALPHAFOLD_SITE_CONFIG' in res.stdout and 'Traceback' not in res.stdout


def test_slurm_time_limits_and_memory_take_the_forms_sbatch_takes(tmp_path):
    for limit in ('30', '30:00', '12:00:00', '1-12', '1-12:30', '2-00:00:00', 'infinite', 'UNLIMITED'):
        assert load_text(tmp_path, '[slurm]\ngpu_time = %s\n' % limit).slurm.gpu_time == limit
    for size in ('4000', '500M', '64G', '1T', '0'):
        assert load_text(tmp_path, '[slurm]\ncpu_mem = %s\n' % size).slurm.cpu_mem == size


def test_batch_options_that_override_the_site_config_are_checked_too():
    from fold_runtime.batch import cli
    args = cli.submit_parser().parse_args(['--fasta', 'x.fa', '--output-dir', 'out', '--gpu-workers', '0'])
    with pytest.raises(KitError) as err:
        cli.settings_from(args, site_config.SiteConfig())
    assert 'gpu_workers must be at least 1' in str(err.value)


def test_each_setting_takes_command_line_then_environment_then_site_config_then_default(tmp_path, monkeypatch):
    """site_config.resolve()'s one precedence, as the stages and alphafold-batch apply it."""
    from fold_runtime import options
    from fold_runtime.batch import cli
    conf = tmp_path / 'site.conf'
    conf.write_text('[cache]\nfeature_cache = /site\n[memory]\nunified_threshold = 900\n'
                    '[slurm]\ncpu_partition = short\n')
    monkeypatch.setenv(site_config.ENV_VAR, str(conf))
    monkeypatch.setenv('ALPHAFOLD_FEATURE_CACHE', '/env')
    monkeypatch.setenv('ALPHAFOLD_UNIFIED_THRESHOLD', '800')

    def parse(*extra):
        return cli.submit_parser().parse_args(['--fasta', 'x.fa', '--output-dir', 'out'] + list(extra))

    def seen(*extra):
        return (options.cpu_options_from_args(parse(*extra)).feature_cache,
                options.gpu_options_from_args(parse(*extra)).unified_threshold)
    assert seen('--feature-cache', '/cli', '--unified-threshold', '700') == ('/cli', 700)
    assert seen() == ('/env', 800)
    monkeypatch.delenv('ALPHAFOLD_FEATURE_CACHE')
    monkeypatch.delenv('ALPHAFOLD_UNIFIED_THRESHOLD')
    assert seen() == ('/site', 900)
    monkeypatch.delenv(site_config.ENV_VAR)
    assert seen() == (None, site_config.Memory.unified_threshold)
    site = site_config.load(str(conf))
    assert cli.settings_from(parse('--cpu-partition', 'long'), site).slurm.cpu_partition == 'long'
    assert cli.settings_from(parse(), site).slurm.cpu_partition == 'short'


def test_a_broken_site_config_stops_every_command_even_when_its_options_cover_the_settings(tmp_path):
    """Read and checked when the command starts: --data-dir / --data-root given, it still stops with
    exit 2 naming the file, section, key and fix (it went unnoticed before), and --help still works."""
    conf = tmp_path / 'site.conf'
    conf.write_text('[memory]\nmode = unifed\n')
    (tmp_path / 'data').mkdir()
    (tmp_path / 't.fasta').write_text('>t\nMKV\n')
    env = dict(os.environ, ALPHAFOLD_SITE_CONFIG=str(conf))
    fasta, data, out = (str(tmp_path / name) for name in ('t.fasta', 'data', 'out'))
    for command in (['fold_runtime', 'msa', '--fasta', fasta, '--output-dir', out, '--data-dir', data],
                    ['data_sync', 'status', '--data-root', data], ['fold_runtime', 'batch', 'status', out]):
        res = subprocess.run([sys.executable, '-m'] + command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True)
        assert res.returncode == 2, res.stdout
        assert "site config %s [memory]: mode = 'unifed' is not one of auto" % conf in res.stdout, res.stdout
        assert 'fix: edit the site config' in res.stdout and 'Traceback' not in res.stdout
        res = subprocess.run([sys.executable, '-m'] + command[:2] + ['--help'], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        assert res.returncode == 0 and 'usage' in res.stdout, res.stdout
