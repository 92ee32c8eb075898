"""Apptainer cannot run here: these are checks of the exact `apptainer build` and `apptainer exec`
command lines, made by a STAND-IN `apptainer` on PATH that records its arguments and the
APPTAINERENV_* variables it was given. The installer and wrappers are the real ones."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

STANDIN = '''#!/usr/bin/env python3
# STAND-IN for apptainer: records argv and APPTAINERENV_*; "build" writes the image file.
import json, os, sys
with open(os.environ['STANDIN_LOG'], 'a') as f:
    f.write(json.dumps({'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items()
                        if k.startswith('APPTAINERENV_')}}) + '\\n')
if os.environ.get('STANDIN_FAIL'):
    sys.exit('FATAL: build failed (stand-in)')
if sys.argv[1] == 'build':
    open(sys.argv[-2], 'w').write('stand-in image\\n')
'''


@pytest.fixture
def standin(tmp_path):
    bindir = tmp_path / 'standin-bin'
    bindir.mkdir()
    (bindir / 'apptainer').write_text(STANDIN)
    (bindir / 'apptainer').chmod(0o755)
    log = tmp_path / 'apptainer.log'
    env = dict(os.environ, PATH='%s:%s' % (bindir, os.environ['PATH']), STANDIN_LOG=str(log))

    def calls():
        return [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
    return env, calls


def install(prefix, env, variant='legacy-cuda11.0'):
    return subprocess.run([sys.executable, '-m', 'installer', 'install', '--prefix', str(prefix), '--variant',
                           variant, '--method', 'apptainer'], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)


def test_build_command_line_and_a_failed_rebuild_keeps_the_old_image(standin, tmp_path):
    env, calls = standin
    prefix = tmp_path / 'pfx'
    res = install(prefix, env)
    assert res.returncode == 0, res.stdout
    image = prefix / '0.1.0' / 'images' / 'alphafold-legacy-cuda11.0.sif'
    assert calls()[0]['argv'] == ['build', '--force', str(image) + '.building',
                                  os.path.join(ROOT, 'recipes', 'legacy-cuda11.0.def')]   # root: no --fakeroot
    assert image.read_text() == 'stand-in image\n'
    lua = (prefix / 'modulefiles' / 'alphafold' / '0.1.0-legacy-cuda11.0.lua').read_text()
    assert 'pushenv("ALPHAFOLD_IMAGE", "%s")' % image in lua
    res = install(prefix, dict(env, STANDIN_FAIL='1'))
    assert res.returncode != 0 and 'build failed' in res.stdout
    assert image.read_text() == 'stand-in image\n'
    from installer.install import read_runtime_env
    assert read_runtime_env(str(prefix / '0.1.0'))['KIT_RUNTIME'] == str(image)   # as the wrapper's `source` reads it


def test_exec_command_lines_binds_gpu_flag_and_environment(standin, tmp_path):
    env, calls = standin
    prefix = tmp_path / 'pfx'
    assert install(prefix, env, 'cuda12').returncode == 0
    image = str(prefix / '0.1.0' / 'images' / 'alphafold-cuda12.sif')
    data = tmp_path / 'data dir'
    data.mkdir()
    out = tmp_path / 'out dir'
    run_env = dict(env, ALPHAFOLD_DATA_DIR=str(data), SLURM_JOB_ID='42', CUDA_VISIBLE_DEVICES='1',
                   SLURM_JOB_NODELIST='gpu[01-02],gpu07', TMPDIR=str(tmp_path))
    bindir = prefix / '0.1.0' / 'bin'
    for cmd, gpu, entry in (('alphafold-predict', True, ['-m', 'fold_runtime', 'predict']),
                            ('alphafold-msa', False, ['-m', 'fold_runtime', 'msa'])):
        args = ['--fasta', 'my target.fasta', '--output-dir', str(out)]
        subprocess.run([str(bindir / cmd)] + args, cwd=str(tmp_path), env=run_env, check=True)
        call = calls()[-1]
        expected = ['exec', '--cleanenv'] + (['--nv'] if gpu else []) + [
            '--bind', '%s:%s:ro' % (data, data), '--bind', '%s:%s' % (out, out),
            '--bind', '%s:%s' % (tmp_path, tmp_path), '--bind', '%s:%s' % (tmp_path, tmp_path),
            image, 'python'] + entry + args
        assert call['argv'] == expected
        assert call['env']['APPTAINERENV_SLURM_JOB_ID'] == '42'
        assert call['env']['APPTAINERENV_SLURM_JOB_NODELIST'] == 'gpu[01-02],gpu07'
        assert call['env']['APPTAINERENV_CUDA_VISIBLE_DEVICES'] == '1'
        assert call['env']['APPTAINERENV_ALPHAFOLD_DATA_DIR'] == str(data)
        assert call['env']['APPTAINERENV_ALPHAFOLD_KIT_BIN'] == str(bindir)   # batch job scripts call back
    out.mkdir(exist_ok=True)
    subprocess.run([str(bindir / 'alphafold-batch'), 'gpu-worker', str(out), '--worker', '0'], cwd=str(tmp_path),
                   env=run_env, check=True)
    argv = calls()[-1]['argv']
    assert argv[:3] == ['exec', '--cleanenv', '--nv'] and '%s:%s' % (out, out) in argv   # the GPU worker gets --nv
    assert argv[-7:] == ['-m', 'fold_runtime', 'batch', 'gpu-worker', str(out), '--worker', '0']
    subprocess.run([str(bindir / 'alphafold-batch'), 'status', str(out)], cwd=str(tmp_path), env=run_env, check=True)
    assert '--nv' not in calls()[-1]['argv']


def test_clear_errors_without_apptainer_or_conda(tmp_path):
    env = dict(os.environ, PATH='/usr/bin:/bin')
    res = install(tmp_path / 'pfx', env)
    assert res.returncode == 3 and 'apptainer not found on PATH' in res.stdout and 'METHOD=conda' in res.stdout
    res = subprocess.run([sys.executable, '-m', 'installer', 'install', '--prefix', str(tmp_path / 'pfx'),
                          '--variant', 'cuda12', '--method', 'conda'], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 3 and 'neither mamba nor conda' in res.stdout
    # An installed wrapper on a node without apptainer says so.
    vdir = tmp_path / 'pfx2' / '0.1.0'
    (vdir / 'etc').mkdir(parents=True)
    (vdir / 'bin').mkdir()
    (vdir / 'etc' / 'runtime.env').write_text("KIT_METHOD=apptainer\nKIT_RUNTIME='/x/a.sif'\n")
    from installer.install import install_wrappers
    install_wrappers(str(vdir))
    res = subprocess.run([str(vdir / 'bin' / 'alphafold-msa'), '--help'], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 3 and 'apptainer not found on PATH' in res.stdout and 'fix:' in res.stdout


def test_unknown_variant_is_refused(tmp_path):
    res = subprocess.run([sys.executable, '-m', 'installer', 'install', '--prefix', str(tmp_path), '--variant',
                          'cuda99', '--method', 'venv'], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 2 and "unknown VARIANT 'cuda99'" in res.stdout and 'legacy-cuda10.1' in res.stdout


def test_uninstall_removes_the_version_and_its_modulefiles(standin, tmp_path):
    env, _ = standin
    prefix = tmp_path / 'pfx'
    assert install(prefix, env).returncode == 0
    subprocess.run(['make', '-s', 'uninstall', 'PREFIX=%s' % prefix, 'VARIANT=legacy-cuda11.0'], cwd=ROOT, check=True)
    assert not (prefix / '0.1.0').exists()
    assert os.listdir(str(prefix / 'modulefiles' / 'alphafold')) == []
