"""Apptainer cannot run here: these are checks of the exact `apptainer build` and `apptainer exec`
command lines, made by a STAND-IN `apptainer` on PATH that records its arguments and the
APPTAINERENV_* variables it was given, and STAND-IN `sbatch`, `squeue`, `sacct` and `scancel` that
record theirs. The installer and wrappers are the real ones."""
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from kit_common import files

from conftest import ROOT

STANDIN = '''#!/usr/bin/env python3
# STAND-IN for apptainer: records argv and APPTAINERENV_*; "build" writes the image file; an
# "exec IMAGE python -c CODE ..." runs CODE with this Python and the checkout's kit, as the image's
# Python would with the kit installed in it.
import json, os, subprocess, sys
with open(os.environ['STANDIN_LOG'], 'a') as f:
    f.write(json.dumps({'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items()
                        if k.startswith('APPTAINERENV_')}}) + '\\n')
if os.environ.get('STANDIN_FAIL'):
    sys.exit('FATAL: build failed (stand-in)')
if sys.argv[1] == 'build':
    open(sys.argv[-2], 'w').write('stand-in image\\n')
image = next((i for i, a in enumerate(sys.argv) if a.endswith('.sif')), None)
if sys.argv[1] == 'exec' and sys.argv[image + 1:image + 3] == ['python', '-c']:
    env = dict(os.environ, PYTHONPATH=os.environ['STANDIN_KIT'])
    sys.exit(subprocess.run([sys.executable] + sys.argv[image + 2:], env=env).returncode)
'''
# STAND-IN Slurm client: records its argv; sbatch answers with a job id as --parsable does.
SLURM_STANDIN = '''#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> "$STANDIN_SLURM_LOG"
[ "$(basename "$0")" = sbatch ] && echo 4242 || true
'''
VERSION = '0.1.0'


@pytest.fixture
def standin(tmp_path):
    bindir = tmp_path / 'standin-bin'
    bindir.mkdir()
    for name, text in [('apptainer', STANDIN)] + [(n, SLURM_STANDIN) for n in ('sbatch', 'squeue', 'sacct', 'scancel')]:
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    log = tmp_path / 'apptainer.log'
    # Nothing of the test run's own kit settings (conftest sets a JAX cache): each test sets its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith('ALPHAFOLD_')}
    env.update(PATH='%s:%s' % (bindir, os.environ['PATH']), STANDIN_LOG=str(log), STANDIN_KIT=ROOT,
               STANDIN_SLURM_LOG=str(tmp_path / 'slurm.log'), TMPDIR=str(tmp_path))

    def calls():
        return [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
    return env, calls


def run(args, env, cwd=ROOT):
    return subprocess.run([str(a) for a in args], cwd=str(cwd), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)


def install(prefix, env, variant='legacy-cuda11.0', *extra):
    return run([sys.executable, '-m', 'installer', 'install', '--prefix', prefix, '--variant', variant,
                '--method', 'apptainer'] + list(extra), env)


def installed(prefix, env, variant):
    """Install variant; returns its directory."""
    res = install(prefix, env, variant)
    assert res.returncode == 0, res.stdout
    return prefix / VERSION / variant


def runtime(vardir):
    from installer.install import read_runtime_env
    return read_runtime_env(str(vardir))['KIT_RUNTIME']   # as the wrapper's `source` reads it


def binds(argv):
    """{path: mode} of the --bind options, after checking that each binds a path onto itself."""
    found = {}
    for i, arg in enumerate(argv):
        if arg == '--bind':
            src, dst, *opts = argv[i + 1].split(':')
            assert src == dst, argv[i + 1]
            found[src] = opts[0] if opts else 'rw'
    return found


def test_build_command_line_and_a_failed_rebuild_keeps_the_old_image(standin, tmp_path):
    env, calls = standin
    vardir = installed(tmp_path / 'pfx', env, 'legacy-cuda11.0')
    image = runtime(vardir)
    assert re.fullmatch(r'%s/images/\d{8}-\d{6}-\d{6}/alphafold-legacy-cuda11.0.sif' % vardir, image)
    assert calls()[0]['argv'] == ['build', '--force', image + '.building',
                                  os.path.join(ROOT, 'recipes', 'legacy-cuda11.0.def')]   # root: no --fakeroot
    assert open(image).read() == 'stand-in image\n'
    assert os.path.exists(os.path.join(os.path.dirname(image), 'lib', 'fold_runtime', 'batch', 'cli.py'))
    lua = (tmp_path / 'pfx' / 'modulefiles' / 'alphafold' / '0.1.0-legacy-cuda11.0.lua').read_text()
    assert 'pushenv("ALPHAFOLD_IMAGE", "%s")' % image in lua
    res = install(tmp_path / 'pfx', dict(env, STANDIN_FAIL='1'))
    assert res.returncode != 0 and 'build failed' in res.stdout
    assert open(image).read() == 'stand-in image\n' and runtime(vardir) == image
    assert os.listdir(str(vardir / 'images')) == [os.path.basename(os.path.dirname(image))]   # no half-built one


def test_exec_command_lines_binds_gpu_flag_and_environment(standin, tmp_path):
    env, calls = standin
    vardir = installed(tmp_path / 'pfx', env, 'cuda12')
    image = runtime(vardir)
    data = tmp_path / 'data dir'
    data.mkdir()
    out = tmp_path / 'out dir'
    run_env = dict(env, ALPHAFOLD_DATA_DIR=str(data), SLURM_JOB_ID='42', CUDA_VISIBLE_DEVICES='1',
                   SLURM_JOB_NODELIST='gpu[01-02],gpu07')
    bindir = vardir / 'bin'
    site_conf = str(vardir / 'etc' / 'site.conf')
    for cmd, gpu, entry in (('alphafold-predict', True, ['-m', 'fold_runtime', 'predict']),
                            ('alphafold-msa', False, ['-m', 'fold_runtime', 'msa'])):
        args = ['--fasta', 'my target.fasta', '--output-dir', str(out)]
        assert run([bindir / cmd] + args, run_env, tmp_path).returncode == 0
        call = calls()[-1]
        # Sorted, so a parent is mounted before what lies inside it; $PWD and $TMPDIR once.
        expected = ['exec', '--cleanenv'] + (['--nv'] if gpu else []) + [
            '--bind', '%s:%s' % (tmp_path, tmp_path), '--bind', '%s:%s:ro' % (data, data),
            '--bind', '%s:%s' % (out, out), '--bind', '%s:%s:ro' % (site_conf, site_conf),
            image, 'python'] + entry + args
        assert call['argv'] == expected
        assert call['env']['APPTAINERENV_SLURM_JOB_ID'] == '42'
        assert call['env']['APPTAINERENV_SLURM_JOB_NODELIST'] == 'gpu[01-02],gpu07'
        assert call['env']['APPTAINERENV_CUDA_VISIBLE_DEVICES'] == '1'
        assert call['env']['APPTAINERENV_ALPHAFOLD_DATA_DIR'] == str(data)
        assert call['env']['APPTAINERENV_ALPHAFOLD_KIT_BIN'] == str(bindir)   # batch job scripts call back
        assert call['env']['APPTAINERENV_ALPHAFOLD_SITE_CONFIG'] == site_conf   # this install's, without the module
    out.mkdir(exist_ok=True)
    assert run([bindir / 'alphafold-batch', 'gpu-worker', out, '--worker', '0'], run_env, tmp_path).returncode == 0
    argv = calls()[-1]['argv']
    assert argv[:3] == ['exec', '--cleanenv', '--nv'] and binds(argv)[str(out)] == 'rw'   # the GPU worker gets --nv
    assert argv[-7:] == ['-m', 'fold_runtime', 'batch', 'gpu-worker', str(out), '--worker', '0']
    assert run([bindir / 'alphafold-batch', 'status', out], run_env, tmp_path).returncode == 0
    assert '--nv' not in calls()[-1]['argv']   # a local batch's status runs in the image, without GPUs


def test_batch_subcommands_that_run_local_gpu_workers_get_the_gpu(standin, tmp_path):
    """`screen` and `submit` with the local executor start GPU workers in the image: --nv (screen
    had none while the wrapper guessed from argv); status and report get no GPU."""
    env, calls = standin
    bindir = installed(tmp_path / 'pfx', env, 'cuda12') / 'bin'
    batch_setup(tmp_path)
    for args in (['screen', '--mode', 'homo-oligomer', '--candidates', 'in/t1.fasta', '--copies', '2'],
                 ['submit', '--fasta', 'in/t1.fasta']):
        args += ['--output-dir', 'out', '--data-dir', 'data', '--executor', 'local']
        assert run([bindir / 'alphafold-batch'] + args, env, tmp_path).returncode == 0
        argv = calls()[-1]['argv']
        assert argv[:3] == ['exec', '--cleanenv', '--nv'], argv
        assert argv[argv.index('python'):] == ['python', '-m', 'fold_runtime', 'batch'] + args
    for sub in ('status', 'report'):
        assert run([bindir / 'alphafold-batch', sub, 'out'], env, tmp_path).returncode == 0
        assert '--nv' not in calls()[-1]['argv'] and calls()[-1]['argv'][-2] == sub


def test_the_gpu_table_covers_every_batch_subcommand_that_runs_an_executor():
    """kit_common/commands.py is the one declaration: every alphafold-batch subcommand that can run
    the local executor (it takes --executor, or reruns a batch) is declared to need the GPU."""
    from fold_runtime.batch import cli as batch_cli
    from kit_common import commands
    runs_executor = {'retry', 'gpu-worker'}
    for sub in set(batch_cli.COMMANDS) - runs_executor:
        res = run([sys.executable, '-m', 'fold_runtime', 'batch', sub, '--help'], os.environ)
        assert res.returncode == 0, res.stdout
        if '--executor' in res.stdout:
            runs_executor.add(sub)
    assert runs_executor >= {'submit', 'screen'}
    assert {s for s in batch_cli.COMMANDS if commands.needs_gpu('alphafold-batch', s)} == runs_executor


def test_binds_inputs_caches_and_the_site_config_by_absolute_path(standin, tmp_path):
    """Each path option in both spellings, the comma-separated --fasta_paths, several FASTA files
    and their --msa files, a relative --data-dir, caches from options and from the environment, a
    path with a space."""
    env, calls = standin
    bindir = installed(tmp_path / 'pfx', env, 'cuda12') / 'bin'
    work = tmp_path / 'work dir'
    for d in ('inputs a', 'inputs_b', 'inputs_c', 'data', 'feature cache', 'env cache', 'out', 'msas a', 'msas_b'):
        (work / d).mkdir(parents=True)
    fastas = ['inputs a/x.fasta', str(work / 'inputs_b' / 'y.fasta')]
    res = run([bindir / 'alphafold-run', '--fasta'] + fastas + ['--fasta_paths=inputs_c/z.fasta,inputs_b/w.fasta',
              '--msa', 'msas a/x.a3m', 'msas_b/y.a3m', 'msas_b/z.a3m', 'msas_b/w.a3m', '--data_dir', 'data', '--output-dir=out', '--feature-cache', 'feature cache',
              '--compile_cache_dir', 'jax cache'], dict(env, ALPHAFOLD_FEATURE_CACHE=str(work / 'env cache')), work)
    assert res.returncode == 0, res.stdout
    got = binds(calls()[-1]['argv'])
    assert got.pop(str(tmp_path / 'pfx' / VERSION / 'cuda12' / 'etc' / 'site.conf')) == 'ro'
    assert got == {str(work / 'inputs a'): 'ro', str(work / 'inputs_b'): 'ro', str(work / 'inputs_c'): 'ro',
                   str(work / 'msas a'): 'ro', str(work / 'msas_b'): 'ro', str(work / 'data'): 'ro', str(work / 'feature cache'): 'rw', str(work / 'jax cache'): 'rw',
                   str(work / 'out'): 'rw', str(work): 'rw', str(tmp_path): 'rw'}
    assert (work / 'jax cache').is_dir()   # made, as jax would make it
    # Without options: the caches named by the environment (as the module sets them).
    res = run([bindir / 'alphafold-predict', '--target-dir', 'out/t'], dict(
        env, ALPHAFOLD_FEATURE_CACHE=str(work / 'env cache'), ALPHAFOLD_JAX_CACHE_DIR=str(work / 'env jax')), work)
    got = binds(calls()[-1]['argv'])
    assert res.returncode == 0 and got[str(work / 'env cache')] == got[str(work / 'env jax')] == 'rw'
    assert got[str(work / 'out' / 't')] == 'rw'


def test_wrapper_bind_table_is_rendered_from_the_option_table(tmp_path):
    """fold_runtime/option_table.py is the one declaration of the path options: the installed
    wrapper's option() arms (every spelling), its list options, the defaults of the caches and the
    paths it reads back from a batch's record are rendered from it, and no other option binds;
    alphafold-batch's --executor and alphafold-data's roots, --from and --log-file likewise from
    their declarations."""
    from fold_runtime import option_table as table, options
    from installer.install import install_wrappers
    (tmp_path / 'bin').mkdir()
    install_wrappers(str(tmp_path))
    script = (tmp_path / 'bin' / 'alphafold-kit-wrapper').read_text()
    assert '@{' not in script
    arms = {flag: action for pattern, action in re.findall(r'^    (--[-a-z|]+)\) (.*) ;;$', script, re.M)
            for flag in pattern.split('|')}
    lists = re.search(r'case "\$\{opt//_/-\}" in (\S+)\) ;;', script).group(1).split('|')
    recorded = set(re.findall(r'\("(r[ow])", "(\w+)", "(\w+)"\)', script))
    expected = set()
    for opt in table.OPTIONS:
        spellings = {n.replace('_', '-') for n in opt.names()}
        action = {table.INPUTS: 'want_fasta "$2"', table.DATA: 'data_dirs+=("$2")', table.MADE: 'made+=("$2")',
                  table.READ_WRITE: '%s=$2' % opt.dest, table.CACHE: '%s=$2' % opt.dest}.get(opt.path)
        assert {arms.get(n) for n in spellings} == {action}, opt.flag
        assert spellings <= set(lists) if action and opt.kwargs.get('nargs') else not spellings & set(lists)
        if opt.path in (table.READ_WRITE, table.CACHE):
            assert 'bind_default %s "${%s:-${%s:-}}" %s %s' % (
                'want_rw' if opt.path == table.READ_WRITE else 'want_cache', opt.dest, opt.env, *opt.site) in script
        for part, cls in (('cpu_options', options.CpuStageOptions), ('gpu_options', options.GpuStageOptions)):
            if action and opt.field in {f.name for f in dataclasses.fields(cls)}:
                expected.add(('ro' if opt.path in (table.INPUTS, table.DATA) else 'rw', part, opt.field))
    assert recorded == expected and ('ro', 'cpu_options', 'msa_paths') in recorded
    assert arms['--fasta-paths'] == arms['--baits'] == 'want_fasta "$2"' and arms['--data-dir'] == 'data_dirs+=("$2")'
    assert '--jackhmmer-binary-path' not in arms and '--models' not in arms
    assert 'data_dirs=("$%s")' % table.BY_FLAG['--data-dir'].env in script   # the runtime's default, bound
    # alphafold-batch's own options (--executor: whether it runs on the host) and alphafold-data's
    # (data_sync/option_table.py): each spelling has one arm, from its declaration.
    from data_sync import option_table as data_table
    spelled = re.findall(r'^    (--[-a-z|]+)\) ', script, re.M)
    assert len(arms) == sum(len(p.split('|')) for p in spelled)
    for opt in table.BATCH_OPTIONS:
        assert arms.get(opt.flag) == ('%s=$2' % opt.dest if opt.path == table.KEPT else None), opt.flag
    assert arms['--executor'] == 'executor=$2' and "executor=''" in script
    assert '[ "$executor" = %s ]' % table.SLURM in script and '"executor": *"%s"' % table.SLURM in script
    for opt in data_table.OPTIONS:
        action = {data_table.ROOT: '%s=$2' % opt.dest, data_table.TREE: 'want rw "$2"',
                  data_table.LOG: 'want rw "$(dirname -- "$(absolute "$2")")"'}.get(opt.path)
        assert arms.get(opt.flag) == action, opt.flag
        if opt.path == data_table.ROOT:
            assert 'bind_default want_nearest "$%s" %s %s' % ((opt.dest,) + opt.site) in script
    assert {f for f, a in arms.items() if a.startswith('want rw')} == {'--from', '--log-file'}


def test_every_directory_of_a_list_path_option_is_bound(standin, tmp_path):
    """--target-dir a b: both directories (the hand-written table bound only the first)."""
    env, calls = standin
    bindir = installed(tmp_path / 'pfx', env, 'cuda12') / 'bin'
    res = run([bindir / 'alphafold-predict', '--target-dir', 'out/a', 'out/b'], env, tmp_path)
    got = binds(calls()[-1]['argv'])
    assert res.returncode == 0 and got[str(tmp_path / 'out' / 'a')] == got[str(tmp_path / 'out' / 'b')] == 'rw'


def write_site(path, **values):
    sections = {'data': ('shared_root', 'local_root'), 'cache': ('feature_cache', 'jax_cache')}
    path.write_text(''.join('[%s]\n%s' % (s, ''.join('%s = %s\n' % (k, values[k]) for k in keys if k in values))
                            for s, keys in sections.items()))
    return path


def test_data_roots_from_options_and_from_the_site_config(standin, tmp_path):
    env, calls = standin
    bindir = installed(tmp_path / 'pfx', env, 'cuda12') / 'bin'
    work = tmp_path / 'work'
    for d in ('shared', 'local', 'opt-root', 'incoming', 'logs'):
        (work / d).mkdir(parents=True)
    conf = write_site(tmp_path / 'site.conf', shared_root=work / 'shared', local_root=work / 'local' / 'new')
    env = dict(env, ALPHAFOLD_SITE_CONFIG=str(conf))
    assert run([bindir / 'alphafold-data', 'stage'], env, work).returncode == 0
    got = binds(calls()[-1]['argv'])
    # local_root does not exist yet: stage makes it, so its nearest existing parent is bound.
    assert (got[str(work / 'shared')], got[str(work / 'local')], got[str(conf)]) == ('rw', 'rw', 'ro')
    assert run([bindir / 'alphafold-data', 'publish', '--data-root=opt-root', '--from', 'incoming', '--log-file',
                'logs/x.log'], env, work).returncode == 0
    got = binds(calls()[-1]['argv'])
    assert got[str(work / 'opt-root')] == got[str(work / 'incoming')] == got[str(work / 'logs')] == 'rw'
    assert str(work / 'shared') not in got
    # alphafold-msa without a data dir reads the site root the runtime picks, read-only.
    conf = write_site(conf, shared_root=work / 'shared', local_root=work / 'local')
    assert run([bindir / 'alphafold-msa', '--fasta', 'x.fasta', '--output-dir', 'o'], env, tmp_path).returncode == 0
    got = binds(calls()[-1]['argv'])
    assert got[str(work / 'shared')] == got[str(work / 'local')] == 'ro'


def test_the_wrapper_binds_the_site_values_the_kit_reads(standin, tmp_path):
    """The site config as configparser reads it (kit_common.site_config, run by the image's Python):
    indented keys, 'key: value', a key in capitals (the bash parser it replaced saw no indented key)."""
    env, calls = standin
    bindir = installed(tmp_path / 'pfx', env, 'cuda12') / 'bin'
    for d in ('shared', 'local', 'fc', 'jc'):
        (tmp_path / d).mkdir()
    conf = tmp_path / 'site.conf'
    conf.write_text('[data]\n    shared_root = {w}/shared\n    LOCAL_ROOT: {w}/local\n'
                    '[cache]\n  feature_cache={w}/fc\n  jax_cache :{w}/jc\n'.format(w=tmp_path))
    env = dict(env, ALPHAFOLD_SITE_CONFIG=str(conf))
    res = run([bindir / 'alphafold-run', '--fasta', 'x.fasta', '--output-dir', 'o'], env, tmp_path)
    assert res.returncode == 0, res.stdout
    got = binds(calls()[-1]['argv'])
    assert (got[str(tmp_path / 'shared')], got[str(tmp_path / 'local')]) == ('ro', 'ro')
    assert got[str(tmp_path / 'fc')] == got[str(tmp_path / 'jc')] == 'rw'
    res = run([bindir / 'alphafold-data', 'status'], env, tmp_path)
    got = binds(calls()[-1]['argv'])
    assert res.returncode == 0 and got[str(tmp_path / 'shared')] == got[str(tmp_path / 'local')] == 'rw'


@pytest.mark.parametrize('bad', ['a,b', 'a:b'])
def test_a_path_with_a_comma_or_colon_is_refused_not_mangled(standin, tmp_path, bad):
    env, calls = standin
    bindir = installed(tmp_path / 'pfx', env, 'cuda12') / 'bin'
    n = len(calls())
    (tmp_path / bad).mkdir()
    # (--fasta splits at ',' itself, as AlphaFold's --fasta_paths does)
    for args in (['--fasta', 'x.fasta', '--feature-cache', bad], ['--fasta', 'x.fasta', '--output-dir=' + bad],
                 ['--fasta', 'x.fasta', '--output-dir', 'out', '--data-dir', str(tmp_path / bad)]):
        res = run([bindir / 'alphafold-msa'] + args, env, tmp_path)
        assert res.returncode == 2, res.stdout
        assert "cannot bind '%s' into the image" % (tmp_path / bad) in res.stdout and 'fix: rename it' in res.stdout
    assert len(calls()) == n   # apptainer never ran


def test_the_working_directory_is_bound_unless_it_is_root_or_unbindable(standin, tmp_path):
    env, calls = standin
    bindir = installed(tmp_path / 'pfx', env, 'cuda12') / 'bin'
    (tmp_path / 'a:b').mkdir()
    for cwd in ('/', tmp_path / 'a:b'):
        res = run([bindir / 'alphafold-msa', '--version'], env, cwd)
        assert res.returncode == 0, res.stdout
        got = binds(calls()[-1]['argv'])
        assert str(tmp_path) in got and '/' not in got and str(tmp_path / 'a:b') not in got   # $TMPDIR, not $PWD
    res = run([bindir / 'alphafold-msa', '--fasta', 'x.fasta'], env, tmp_path / 'a:b')   # a path in it: refused
    assert res.returncode == 2 and "cannot bind '%s' into the image" % (tmp_path / 'a:b') in res.stdout


def batch_setup(tmp_path):
    """A FASTA file and a data directory whose params/ passes submit's weights check."""
    (tmp_path / 'data' / 'params').mkdir(parents=True)
    for i in range(1, 6):
        (tmp_path / 'data' / 'params' / ('params_model_%d.npz' % i)).write_bytes(b'')
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in' / 't1.fasta').write_text('>t1\nMKTAYIAKQRQISFVKSHFSRQ\n')
    (tmp_path / 'msas').mkdir()
    (tmp_path / 'msas' / 't1.a3m').write_text('>t1\nMKTAYIAKQRQISFVKSHFSRQ\n>hit\nMKTAYIAKQ-QISFVKaSHFSRQ\n')


def test_batch_submit_to_slurm_runs_on_the_host_and_its_jobs_in_the_image(standin, tmp_path):
    env, calls = standin
    vardir = installed(tmp_path / 'pfx', env, 'cuda12')
    bindir, n = vardir / 'bin', len(calls())
    batch_setup(tmp_path)
    res = run([bindir / 'alphafold-batch', 'submit', '--executor', 'slurm', '--fasta', 'in/t1.fasta',
               '--output-dir', 'out', '--data-dir', 'data', '--msa', 'msas'], env, tmp_path)
    assert res.returncode == 0, res.stdout
    assert len(calls()) == n   # no apptainer: sbatch is on the host
    slurm = (tmp_path / 'slurm.log').read_text().splitlines()
    assert [l.split()[:2] for l in slurm] == [['sbatch', '--parsable']] * 2, slurm
    script = (tmp_path / 'out' / '.batch' / 'scripts' / 'msa.sbatch').read_text()
    assert 'exec %s/alphafold-batch msa-task' % bindir in script   # the job calls the wrapper: the image
    res = run([bindir / 'alphafold-batch', 'status', 'out'], env, tmp_path)
    assert res.returncode == 0 and len(calls()) == n, res.stdout
    assert any(l.startswith(('squeue', 'sacct')) for l in (tmp_path / 'slurm.log').read_text().splitlines()[2:])
    # The CPU-stage job: in the image, with the data and --msa directories the batch recorded bound.
    res = run([bindir / 'alphafold-batch', 'msa-task', tmp_path / 'out', '--target', 't1', '--cpus', '2'],
              env, tmp_path / 'out')
    assert res.returncode == 0, res.stdout
    argv = calls()[-1]['argv']
    assert argv[-8:-4] == ['fold_runtime', 'batch', 'msa-task', str(tmp_path / 'out')]
    assert binds(argv)[str(tmp_path / 'data')] == 'ro' and binds(argv)[str(tmp_path / 'out')] == 'rw'
    assert binds(argv)[str(tmp_path / 'msas')] == 'ro'
    # Without a Python >= 3.8 on the host, a clear error.
    res = run([bindir / 'alphafold-batch', 'cancel', 'out'], dict(env, ALPHAFOLD_HOST_PYTHON='/bin/false'), tmp_path)
    assert res.returncode == 3 and 'ALPHAFOLD_HOST_PYTHON' in res.stdout and 'runs on this host' in res.stdout


def test_mmseqs2_gpu_search_gets_the_gpu_in_the_image(standin, tmp_path):
    """--gpu (option_table: needs_gpu) gives alphafold-msa --nv, and a batch recorded with it gives its
    msa-task jobs --nv; without it, neither gets one."""
    env, calls = standin
    bindir = installed(tmp_path / 'pfx', env, 'cuda12') / 'bin'
    batch_setup(tmp_path)
    args = ['--fasta', 'in/t1.fasta', '--output-dir', 'out', '--data-dir', 'data', '--msa-mode', 'mmseqs2']
    for extra, nv in (([], False), (['--gpu'], True)):
        assert run([bindir / 'alphafold-msa'] + args + extra, env, tmp_path).returncode == 0
        assert ('--nv' in calls()[-1]['argv']) == nv, calls()[-1]['argv']
    for recorded, nv in ((False, False), (True, True)):
        (tmp_path / 'out' / '.batch').mkdir(parents=True, exist_ok=True)
        files.write_json(str(tmp_path / 'out' / '.batch' / 'batch.json'), {'cpu_options': {'mmseqs_gpu': recorded}})
        res = run([bindir / 'alphafold-batch', 'msa-task', tmp_path / 'out', '--target', 't1'], env, tmp_path)
        assert res.returncode == 0 and ('--nv' in calls()[-1]['argv']) == nv, calls()[-1]['argv']


def module_env(prefix, variant, env):
    """The environment `module load` gives: the Lua modulefile's pushenv lines (the module systems
    themselves load it in tests/integration/test_modules.py)."""
    lua = (prefix / 'modulefiles' / 'alphafold' / ('%s-%s.lua' % (VERSION, variant))).read_text()
    return dict(env, **dict(re.findall(r'pushenv\("(\w+)", "([^"\\]*)"\)', lua)))


SITE = {'data': 'shared_root = {w}/data\n', 'memory': 'mode = default\nunified_threshold = 900\n',
        'cache': 'feature_cache = {w}/fc1\njax_cache = {w}/jc1\n', 'slurm': 'cpu_partition = short\n',
        'batch': 'length_buckets = 64,128\n'}
# section: (its text after the edit, what a submit records of it (batch.json, the job script), before, after)
EDITS = {
    'memory': ('mode = unified\nunified_threshold = 700\n',
               lambda b, _: (b['gpu_options']['memory_mode'], b['gpu_options']['unified_threshold']),
               ('default', 900), ('unified', 700)),
    'cache': ('feature_cache = {w}/fc2\njax_cache = {w}/jc2\n',
              lambda b, _: (b['cpu_options']['feature_cache'], b['gpu_options']['compile_cache_dir']),
              ('{w}/fc1', '{w}/jc1'), ('{w}/fc2', '{w}/jc2')),
    'slurm': ('cpu_partition = long\n', lambda _, script: re.findall('--partition=(.*)', script),
              ['short'], ['long']),
    'batch': ('length_buckets = 256\n', lambda b, _: b['settings']['buckets'], [64, 128], [256]),
}


def site_text(w, **sections):
    return ''.join('[%s]\n%s' % (name, sections.get(name, text).format(w=w)) for name, text in SITE.items())


@pytest.mark.parametrize('section', sorted(EDITS))
def test_editing_the_site_config_after_install_changes_what_batch_submit_does(standin, tmp_path, section):
    """Each section of the installed etc/site.conf is read when the command starts, with the
    module's environment: [memory] and [cache] too (the module once froze them at install)."""
    env, _ = standin
    (tmp_path / 'site.conf').write_text(site_text(tmp_path))
    res = install(tmp_path / 'pfx', env, 'cuda12', '--site-config', tmp_path / 'site.conf')
    assert res.returncode == 0, res.stdout
    vardir, env = tmp_path / 'pfx' / VERSION / 'cuda12', module_env(tmp_path / 'pfx', 'cuda12', env)
    batch_setup(tmp_path)
    after, observe, want_before, want_after = EDITS[section]
    seen = []
    for out in ('out1', 'out2'):
        res = run([vardir / 'bin' / 'alphafold-batch', 'submit', '--executor', 'slurm', '--fasta', 'in/t1.fasta',
                   '--output-dir', out, '--data-dir', 'data'], env, tmp_path)
        assert res.returncode == 0, res.stdout
        seen.append(observe(json.loads((tmp_path / out / '.batch' / 'batch.json').read_text()),
                            (tmp_path / out / '.batch' / 'scripts' / 'msa.sbatch').read_text()))
        (vardir / 'etc' / 'site.conf').write_text(site_text(tmp_path, **{section: after}))
    fill = lambda v: tuple(x.format(w=tmp_path) for x in v) if isinstance(v[0], str) and '{w}' in v[0] else v
    assert seen == [fill(want_before), fill(want_after)]


def test_editing_the_data_section_after_install_changes_which_databases_a_command_reads(standin, tmp_path):
    """[data] shared_root, read live: submit checks the weights where the edited site config points."""
    env, _ = standin
    (tmp_path / 'site.conf').write_text(site_text(tmp_path))
    assert install(tmp_path / 'pfx', env, 'cuda12', '--site-config', tmp_path / 'site.conf').returncode == 0
    vardir, env = tmp_path / 'pfx' / VERSION / 'cuda12', module_env(tmp_path / 'pfx', 'cuda12', env)
    batch_setup(tmp_path)
    submit = [vardir / 'bin' / 'alphafold-batch', 'submit', '--executor', 'slurm', '--fasta', 'in/t1.fasta',
              '--output-dir', 'out']
    res = run(submit + ['--dry-run'], env, tmp_path)
    assert res.returncode == 0, res.stdout
    (tmp_path / 'elsewhere').mkdir()
    (vardir / 'etc' / 'site.conf').write_text(site_text(tmp_path, data='shared_root = {w}/elsewhere\n'))
    res = run(submit + ['--dry-run'], env, tmp_path)
    assert res.returncode == 3 and str(tmp_path / 'elsewhere' / 'params') in res.stdout, res.stdout


def test_the_host_side_of_alphafold_batch_needs_only_the_standard_library(tmp_path):
    """What the wrapper runs on the host, run with `python -S`: no site-packages at all."""
    batch_setup(tmp_path)
    env = dict(os.environ, PATH='%s:%s' % (tmp_path / 'bin', os.environ['PATH']))
    (tmp_path / 'bin').mkdir()
    host = [sys.executable, '-I', '-S', '-c', 'import sys; sys.path.insert(0, %r); import runpy; '
            'runpy.run_module("fold_runtime", run_name="__main__", alter_sys=True)' % ROOT, 'batch']
    submit = ['submit', '--executor', 'slurm', '--fasta', 'in/t1.fasta', '--output-dir', 'out', '--data-dir', 'data',
              '--msa', 'msas']
    for sub in (submit + ['--dry-run'], ['screen', '--help'], ['status', '--help'], ['cancel', '--help'],
                ['retry', '--help']):
        res = run(host + sub, env, tmp_path)
        assert res.returncode == 0, res.stdout
    # --msa files are checked at submit there too, before anything is submitted.
    (tmp_path / 'msas' / 't1.a3m').write_text('>t1\nMKTAYIAKQ\n')
    res = run(host + submit, env, tmp_path)
    assert res.returncode == 2 and 'not with the sequence of target t1' in res.stdout, res.stdout
    assert not (tmp_path / 'out').exists()


def test_variants_side_by_side_and_uninstall_removes_one(standin, tmp_path):
    env, calls = standin
    prefix = tmp_path / 'pfx'
    dirs = {v: installed(prefix, env, v) for v in ('cuda12', 'legacy-cuda11.0')}
    mdir = prefix / 'modulefiles' / 'alphafold'
    for variant, vardir in dirs.items():
        lua = (mdir / ('0.1.0-%s.lua' % variant)).read_text()
        assert 'prepend_path("PATH", "%s/bin")' % vardir in lua and '"%s/etc/site.conf"' % vardir in lua
        assert run([vardir / 'bin' / 'alphafold-msa', '--help'], env, tmp_path).returncode == 0
        assert runtime(vardir) in calls()[-1]['argv']   # each wrapper runs its own image
    res = run(['make', '-s', 'check-install', 'PREFIX=%s' % prefix], env)
    assert res.returncode == 2 and 'cuda12, legacy-cuda11.0' in res.stdout and 'VARIANT=' in res.stdout, res.stdout
    res = run(['make', '-s', 'check-install', 'PREFIX=%s' % prefix, 'VARIANT=cuda12'], env)
    assert 'OK   apptainer runtime present: %s' % runtime(dirs['cuda12']) in res.stdout, res.stdout
    # The default is still the first install, cuda12: removing it removes the default too.
    assert run(['make', '-s', 'uninstall', 'PREFIX=%s' % prefix, 'VARIANT=cuda12'], env).returncode == 0
    assert not dirs['cuda12'].exists() and sorted(os.listdir(str(mdir))) == [
        '0.1.0-legacy-cuda11.0', '0.1.0-legacy-cuda11.0.lua']
    assert run([dirs['legacy-cuda11.0'] / 'bin' / 'alphafold-msa', '--help'], env, tmp_path).returncode == 0
    # One variant left: VARIANT may be left out.
    res = run(['make', '-s', 'uninstall', 'PREFIX=%s' % prefix], env)
    assert res.returncode == 0, res.stdout
    assert not (prefix / VERSION).exists() and os.listdir(str(mdir)) == []


def test_a_second_variant_keeps_the_default_module_unless_asked(standin, tmp_path):
    env, _ = standin
    prefix = tmp_path / 'pfx'
    version = prefix / 'modulefiles' / 'alphafold' / '.version'
    res = install(prefix, env, 'cuda12')
    assert res.returncode == 0 and 'the default module is now alphafold/0.1.0-cuda12' in res.stdout, res.stdout
    res = install(prefix, env, 'legacy-cuda11.0')
    assert res.returncode == 0 and 'the default module stays alphafold/0.1.0-cuda12' in res.stdout, res.stdout
    assert 'DEFAULT=yes' in res.stdout and '"0.1.0-cuda12"' in version.read_text()
    res = install(prefix, env, 'legacy-cuda11.0', '--make-default')
    assert 'the default module is now alphafold/0.1.0-legacy-cuda11.0 (it was alphafold/0.1.0-cuda12)' in res.stdout
    assert '"0.1.0-legacy-cuda11.0"' in version.read_text()


def test_reinstall_keeps_the_previous_build_and_any_build_in_use(standin, tmp_path):
    env, _ = standin
    prefix = tmp_path / 'pfx'
    first = os.path.dirname(runtime(installed(prefix, env, 'cuda12')))
    second = os.path.dirname(runtime(installed(prefix, env, 'cuda12')))
    assert os.path.isdir(first)   # the previous build: jobs may still run from it
    job = subprocess.Popen(['sleep', '60'], cwd=first)   # a job running from the oldest build
    try:
        res = install(prefix, env, 'cuda12')
        assert res.returncode == 0 and os.path.isdir(first), res.stdout
        assert 'kept the older build %s: in use by pid %d (sleep)' % (first, job.pid) in res.stdout
        res = run(['make', '-s', 'uninstall', 'PREFIX=%s' % prefix], env)
        assert res.returncode == 2 and 'in use by pid %d' % job.pid in res.stdout and os.path.isdir(first)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()
    third = os.path.dirname(runtime(prefix / VERSION / 'cuda12'))
    res = install(prefix, env, 'cuda12')
    assert res.returncode == 0 and 'removed the older build %s' % first in res.stdout, res.stdout
    fourth = os.path.dirname(runtime(prefix / VERSION / 'cuda12'))
    assert sorted(os.listdir(os.path.dirname(first))) == [os.path.basename(third), os.path.basename(fourth)]
    assert not os.path.exists(second)


@pytest.mark.parametrize('value, words', [('/a\n  /b', 'is not one line of text'), ('/a\x1b[31m', "'\\x1b'"),
                                          ('/a,b', "holds ',', which Apptainer's --bind cannot take")])
def test_a_site_value_the_install_cannot_carry_fails_it_before_anything_is_written(standin, tmp_path, value, words):
    """A newline, a control character a modulefile cannot set, a separator Apptainer's --bind splits at."""
    env, calls = standin
    conf = tmp_path / 'site.conf'
    conf.write_text('[data]\nshared_root = %s\n' % value)
    prefix = tmp_path / 'pfx'
    res = run(['make', '-s', 'install', 'PREFIX=%s' % prefix, 'VARIANT=cuda12', 'METHOD=apptainer',
               'SITE_CONFIG=%s' % conf], env)
    assert res.returncode == 2 and words in res.stdout and 'fix:' in res.stdout, res.stdout
    assert not prefix.exists() and calls() == []


def test_clear_errors_without_apptainer_or_conda(tmp_path):
    env = dict(os.environ, PATH='/usr/bin:/bin')
    res = install(tmp_path / 'pfx', env)
    assert res.returncode == 3 and 'apptainer not found on PATH' in res.stdout and 'METHOD=conda' in res.stdout
    res = run([sys.executable, '-m', 'installer', 'install', '--prefix', tmp_path / 'pfx', '--variant', 'cuda12',
               '--method', 'conda'], env)
    assert res.returncode == 3 and 'neither mamba nor conda' in res.stdout
    assert not (tmp_path / 'pfx').exists()
    # An installed wrapper on a node without apptainer says so.
    vardir = tmp_path / 'pfx2' / '0.1.0' / 'cuda12'
    (vardir / 'etc').mkdir(parents=True)
    (vardir / 'bin').mkdir()
    (vardir / 'etc' / 'runtime.env').write_text("KIT_METHOD=apptainer\nKIT_RUNTIME='/x/a.sif'\n")
    from installer.install import install_wrappers
    install_wrappers(str(vardir))
    res = run([vardir / 'bin' / 'alphafold-msa', '--help'], env, tmp_path)
    assert res.returncode == 3 and 'apptainer not found on PATH' in res.stdout and 'fix:' in res.stdout


def test_unknown_variant_is_refused(tmp_path):
    res = run([sys.executable, '-m', 'installer', 'install', '--prefix', tmp_path, '--variant', 'cuda99',
               '--method', 'venv'], os.environ)
    assert res.returncode == 2 and "unknown VARIANT 'cuda99'" in res.stdout and 'legacy-cuda10.1' in res.stdout
