"""Real Lmod, real environment-modules 5.x and 4.x load the installed modulefile in a fresh bash."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import GPU_ARGS, ROOT

ENVMODULES = os.environ.get('ENVMODULES_DIR', '/opt/environment-modules')      # 5.x, Debian 12's
ENVMODULES4 = os.environ.get('ENVMODULES4_DIR', '/opt/environment-modules-4')  # 4.6, Debian 11's: no pushenv
TCL = 'module() { eval "$(tclsh %s/usr/lib/x86_64-linux-gnu/modulecmd.tcl bash "$@")"; }'
INIT = {'lmod': '. /usr/share/lmod/lmod/init/bash', 'tcl': TCL % ENVMODULES, 'tcl4': TCL % ENVMODULES4}
FLAVOURS = sorted(INIT)
# Module-system bookkeeping and the shell's level counter, not the module's own effect.
BOOKKEEPING = ('_ModuleTable', '__LMOD', 'LMOD_', '_LMFILES_', 'LOADEDMODULES', '__MODULES_', 'MODULES_', 'SHLVL')
BOOKKEEPING_SUFFIX = '_modshare'   # environment-modules 4.x's reference counts


def shell(flavour, prefix, script, env=None):
    """Run script in a fresh bash with the module system initialised and the kit's modulefiles used."""
    full = '%s\nmodule use %s/modulefiles\n%s' % (INIT[flavour], prefix, script)
    res = subprocess.run(['bash', '-c', full], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, env=env or os.environ.copy())
    return res


def env_json():
    # This interpreter, not a `python3` shim: pyenv's shims prepend to PATH.
    return '"%s" -c "import json, os; print(json.dumps(dict(os.environ)))"' % sys.executable


def own(env):
    """The environment minus bookkeeping; PATH without repeats, which Lmod drops on any unload."""
    env = {k: v for k, v in env.items() if not k.startswith(BOOKKEEPING) and not k.endswith(BOOKKEEPING_SUFFIX)}
    seen = []
    for entry in env.get('PATH', '').split(':'):
        if entry not in seen:
            seen.append(entry)
    env['PATH'] = ':'.join(seen)
    return env


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_load_sets_the_kit_environment(flavour, installed_kit, kit_site):
    # Without the suite's own XLA_FLAGS (conftest's compile setting): the module must set none.
    clean = {k: v for k, v in os.environ.items() if not k.startswith('XLA_') and k != 'TF_FORCE_UNIFIED_MEMORY'}
    res = shell(flavour, installed_kit, 'module load alphafold\n' + env_json(), env=clean)
    assert res.returncode == 0, res.stderr
    env = json.loads(res.stdout.strip().splitlines()[-1])
    vardir = '%s/0.1.0/cpu' % installed_kit     # each variant in its own directory
    assert env['PATH'].split(':')[0] == vardir + '/bin'
    assert env['ALPHAFOLD_SITE_CONFIG'] == vardir + '/etc/site.conf'
    assert os.path.dirname(env['ALPHAFOLD_ENV']) == vardir + '/envs'
    assert 'ALPHAFOLD_UNIFIED_THRESHOLD' not in env   # the runtime reads [memory] from the site config
    assert env['ALPHAFOLD_KIT_VARIANT'] == 'cpu'
    assert not [k for k in env if k.startswith('XLA_') or k == 'TF_FORCE_UNIFIED_MEMORY']
    res = shell(flavour, installed_kit, 'module help alphafold/0.1.0-cpu 2>&1; module whatis alphafold 2>&1')
    for text in ('alphafold-msa --fasta', '#SBATCH -p gpu --gres=gpu:1', 'split CPU/GPU stages'):
        assert text in res.stdout + res.stderr, text


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_unload_restores_the_environment_exactly(flavour, installed_kit):
    res = shell(flavour, installed_kit, '%s\nmodule load alphafold/0.1.0-cpu\nmodule unload alphafold\n%s'
                % (env_json(), env_json()))
    assert res.returncode == 0, res.stderr
    before, after = (json.loads(l) for l in res.stdout.strip().splitlines()[-2:])
    assert own(after) == own(before)


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_only_one_alphafold_version_at_a_time(flavour, installed_kit, tmp_path):
    mdir = installed_kit / 'modulefiles' / 'alphafold'
    for suffix in ('', '.lua'):
        text = (mdir / ('0.1.0-cpu' + suffix)).read_text().replace('0.1.0', '9.9.9')
        (mdir / ('9.9.9-cpu' + suffix)).write_text(text)
    try:
        res = shell(flavour, installed_kit, 'module load alphafold/0.1.0-cpu; module load alphafold/9.9.9-cpu;'
                    ' echo "LOADED=$LOADEDMODULES"')
        loaded = res.stdout.strip().splitlines()[-1].split('=', 1)[1]
        assert len([m for m in loaded.split(':') if m.startswith('alphafold/')]) == 1, res.stdout + res.stderr
    finally:
        for suffix in ('', '.lua'):
            (mdir / ('9.9.9-cpu' + suffix)).unlink()


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_module_system_version(flavour, installed_kit):
    """The flavours are what they claim: environment-modules 4.x lacks pushenv, 5.x has it."""
    res = shell(flavour, installed_kit, 'module --version 2>&1')
    want = {'lmod': 'Modules based on Lua', 'tcl': 'Modules Release 5.', 'tcl4': 'Modules Release 4.'}[flavour]
    assert want in res.stdout + res.stderr, res.stdout + res.stderr


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_unload_gives_back_a_value_the_user_had(flavour, installed_kit):
    """pushenv (Lmod, environment-modules 5.x) restores it; 4.x's setenv unsets it, as documented."""
    res = shell(flavour, installed_kit, 'export ALPHAFOLD_KIT_VARIANT=mine\nmodule load alphafold\n'
                'echo "LOADED=$ALPHAFOLD_KIT_VARIANT"\nmodule unload alphafold\necho "AFTER=${ALPHAFOLD_KIT_VARIANT-unset}"')
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[-2] == 'LOADED=cpu'
    assert lines[-1] == ('AFTER=unset' if flavour == 'tcl4' else 'AFTER=mine')


@pytest.mark.parametrize('flavour', FLAVOURS)
def test_data_dir_is_chosen_in_the_job_not_at_module_load(flavour, installed_kit, kit_site):
    """The module sets no ALPHAFOLD_DATA_DIR (a login node's choice, exported by sbatch, would be
    wrong on the compute node); the runtime in the installed environment picks the node-local copy
    when its stamp matches the shared manifest."""
    local = kit_site / 'local'
    shared_current = '%s/shared/current' % kit_site

    def data_dir():
        res = shell(flavour, installed_kit, 'module load alphafold\necho "DATA=${ALPHAFOLD_DATA_DIR-unset}"\n'
                    '"$ALPHAFOLD_ENV/bin/python" -c "from fold_runtime.options import resolve_data_dir; '
                    'print(\'JOB=\' + resolve_data_dir(None))"')
        assert res.returncode == 0, res.stderr
        module, job = res.stdout.strip().splitlines()[-2:]
        assert module == 'DATA=unset'
        return job.split('=', 1)[1]

    assert data_dir() == shared_current                      # nothing staged
    (local / 'v1').mkdir()
    os.symlink('v1', str(local / 'current'))
    try:
        assert data_dir() == shared_current                  # staged but not verified: no stamp
        (local / 'v1' / 'staged.id').write_text('v0\n')
        assert data_dir() == shared_current                  # stale stamp
        (local / 'v1' / 'staged.id').write_text('v1\n')
        assert data_dir() == '%s/current' % local            # stamp matches the shared manifest
    finally:
        (local / 'current').unlink()
        shutil.rmtree(str(local / 'v1'))


def test_end_to_end_through_the_module(installed_kit, targets, tmp_path):
    """module load -> alphafold-msa -> features.pkl -> alphafold-predict (stand-in weights) -> relaxed
    ranked_0.pdb, in the cpu variant's locked venv (test_stacks checks it holds exactly the lock);
    then alphafold-batch on the same output directory, which finds both stages' work done (its
    length bucket is the unpadded length the direct predict ran at)."""
    out = tmp_path / 'my outputs'      # a path with a space
    script = ('module load alphafold\nset -e\nalphafold-msa --fasta "%s" --output-dir "%s" --cpus 2\n'
              'alphafold-predict --fasta "%s" --output-dir "%s" %s\n'
              'alphafold-batch submit --fasta "%s" --output-dir "%s" %s --buckets 24 --no-progress\n'
              'alphafold-batch status "%s"\n'
              % (targets['conotoxin'], out, targets['conotoxin'], out, ' '.join(GPU_ARGS),
                 targets['conotoxin'], out, ' '.join(GPU_ARGS), out))
    res = shell('lmod', installed_kit, script)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / 'conotoxin' / 'features.pkl').exists()
    ranked = (out / 'conotoxin' / 'ranked_0.pdb').read_text()
    relaxed = [p.read_text() for p in (out / 'conotoxin').glob('relaxed_*.pdb')]
    assert ranked.startswith('ATOM') and relaxed == [ranked] and ' H ' in ranked   # AMBER relax (adds H)
    logs = ''.join(p.read_text() for p in (out / '.batch' / 'logs').iterdir())
    assert logs.count(': kept: its files exist') == 2 and 'features.pkl matches its inputs' in logs, logs
    assert re.search(r'conotoxin\s+done\s+cpu_stage', res.stdout), res.stdout
    assert 'USING RANDOM TEST WEIGHTS' in res.stderr
    assert 'memory mode default (requested auto, longest protein 24 residues, threshold 1000)' in res.stderr


def test_check_install_runs_the_tools_inside_the_environment(installed_kit, kit_site):
    res = subprocess.run(['make', '-s', 'check-install', 'PREFIX=%s' % installed_kit],
                         cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 0, res.stdout
    for line in ('OK   venv runtime present', 'OK   jackhmmer runs', 'OK   hhblits runs',
                 'OK   data directory readable: %s/shared/current' % kit_site, 'OK   alphafold-msa --version',
                 'OK   kit --version: alphafold-hpc-kit 0.1.0 (variant cpu; AlphaFold: alphafold 2.3.2)',
                 'OK   imports alphafold.model.model, alphafold.relax.relax, alphafold.data.pipeline',
                 'OK   reads the stereo-chemistry table', 'OK   builds a model config: model_1_ptm',
                 'OK   jax starts: jax 0.4.26', 'OK   OpenMM starts: OpenMM 8.2', 'OK   kalign 2.04 found'):
        assert line in res.stdout, line
    res = subprocess.run(['make', '-s', 'check-install', 'PREFIX=%s' % installed_kit, 'GPU=1'],
                         cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode != 0 and 'FAIL jax starts and sees a GPU: RuntimeError: no GPU visible' in res.stdout   # none here
    assert 'FAIL OpenMM starts with its CUDA platform' in res.stdout
