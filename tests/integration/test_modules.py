"""Real Lmod and real environment-modules load the installed modulefile in a fresh bash."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import GPU_ARGS, ROOT

ENVMODULES = os.environ.get('ENVMODULES_DIR', '/opt/environment-modules')
INIT = {
    'lmod': '. /usr/share/lmod/lmod/init/bash',
    'tcl': 'module() { eval "$(tclsh %s/usr/lib/x86_64-linux-gnu/modulecmd.tcl bash "$@")"; }' % ENVMODULES,
}
# Module-system bookkeeping and the shell's level counter, not the module's own effect.
BOOKKEEPING = ('_ModuleTable', '__LMOD', 'LMOD_', '_LMFILES_', 'LOADEDMODULES', '__MODULES_', 'MODULES_', 'SHLVL')


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
    env = {k: v for k, v in env.items() if not k.startswith(BOOKKEEPING)}
    seen = []
    for entry in env.get('PATH', '').split(':'):
        if entry not in seen:
            seen.append(entry)
    env['PATH'] = ':'.join(seen)
    return env


@pytest.mark.parametrize('flavour', ['lmod', 'tcl'])
def test_load_sets_the_kit_environment(flavour, installed_kit, kit_site):
    res = shell(flavour, installed_kit, 'module load alphafold\n' + env_json())
    assert res.returncode == 0, res.stderr
    env = json.loads(res.stdout.strip().splitlines()[-1])
    vardir = '%s/0.1.0/cuda12' % installed_kit     # each variant in its own directory
    assert env['PATH'].split(':')[0] == vardir + '/bin'
    assert env['ALPHAFOLD_SITE_CONFIG'] == vardir + '/etc/site.conf'
    assert os.path.dirname(env['ALPHAFOLD_ENV']) == vardir + '/envs'
    assert (env['ALPHAFOLD_MEMORY_MODE'], env['ALPHAFOLD_UNIFIED_THRESHOLD']) == ('auto', '1000')
    assert env['ALPHAFOLD_KIT_VARIANT'] == 'cuda12'
    assert not [k for k in env if k.startswith('XLA_') or k == 'TF_FORCE_UNIFIED_MEMORY']
    res = shell(flavour, installed_kit, 'module help alphafold/0.1.0-cuda12 2>&1; module whatis alphafold 2>&1')
    for text in ('alphafold-msa --fasta', '#SBATCH -p gpu --gres=gpu:1', 'split CPU/GPU stages'):
        assert text in res.stdout + res.stderr, text


@pytest.mark.parametrize('flavour', ['lmod', 'tcl'])
def test_unload_restores_the_environment_exactly(flavour, installed_kit):
    res = shell(flavour, installed_kit, '%s\nmodule load alphafold/0.1.0-cuda12\nmodule unload alphafold\n%s'
                % (env_json(), env_json()))
    assert res.returncode == 0, res.stderr
    before, after = (json.loads(l) for l in res.stdout.strip().splitlines()[-2:])
    assert own(after) == own(before)


@pytest.mark.parametrize('flavour', ['lmod', 'tcl'])
def test_only_one_alphafold_version_at_a_time(flavour, installed_kit, tmp_path):
    mdir = installed_kit / 'modulefiles' / 'alphafold'
    for suffix in ('', '.lua'):
        text = (mdir / ('0.1.0-cuda12' + suffix)).read_text().replace('0.1.0', '9.9.9')
        (mdir / ('9.9.9-cuda12' + suffix)).write_text(text)
    try:
        res = shell(flavour, installed_kit, 'module load alphafold/0.1.0-cuda12; module load alphafold/9.9.9-cuda12;'
                    ' echo "LOADED=$LOADEDMODULES"')
        loaded = res.stdout.strip().splitlines()[-1].split('=', 1)[1]
        assert len([m for m in loaded.split(':') if m.startswith('alphafold/')]) == 1, res.stdout + res.stderr
    finally:
        for suffix in ('', '.lua'):
            (mdir / ('9.9.9-cuda12' + suffix)).unlink()


@pytest.mark.parametrize('flavour', ['lmod', 'tcl'])
def test_data_dir_prefers_a_matching_node_local_copy(flavour, installed_kit, kit_site):
    local = kit_site / 'local'
    shared_current = '%s/shared/current' % kit_site

    def data_dir():
        res = shell(flavour, installed_kit, 'module load alphafold\necho "DATA=$ALPHAFOLD_DATA_DIR"')
        assert res.returncode == 0, res.stderr
        return res.stdout.strip().splitlines()[-1].split('=', 1)[1]

    assert data_dir() == shared_current                      # nothing staged
    (local / 'v1').mkdir()
    os.symlink('v1', str(local / 'current'))
    try:
        assert data_dir() == shared_current                  # staged but not verified: no stamp
        (local / 'v1' / 'staged.id').write_text('v0\n')
        assert data_dir() == shared_current                  # stale stamp
        (local / 'v1' / 'staged.id').write_text('v1\n')
        assert data_dir() == '%s/current' % local            # stamp matches the shared manifest
        from data_sync.layout import choose_data_dir         # the runtime's rule agrees
        assert choose_data_dir('%s/shared' % kit_site, str(local))[0] == '%s/current' % local
    finally:
        (local / 'current').unlink()
        shutil.rmtree(str(local / 'v1'))


def test_end_to_end_through_the_module(installed_kit, targets, tmp_path):
    """module load -> alphafold-msa -> features.pkl -> alphafold-predict (stand-in weights) -> ranked_0.pdb"""
    out = tmp_path / 'my outputs'      # a path with a space
    script = ('module load alphafold\nset -e\nalphafold-msa --fasta "%s" --output-dir "%s" --cpus 2\n'
              'alphafold-predict --fasta "%s" --output-dir "%s" %s\n'
              'alphafold-batch submit --fasta "%s" --output-dir "%s/batch" %s --models-to-relax none --no-progress\n'
              'alphafold-batch status "%s/batch"\n'
              % (targets['conotoxin'], out, targets['conotoxin'], out, ' '.join(GPU_ARGS),
                 targets['conotoxin'], out, ' '.join(GPU_ARGS), out))
    res = shell('lmod', installed_kit, script)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / 'conotoxin' / 'features.pkl').exists()
    assert (out / 'conotoxin' / 'ranked_0.pdb').read_text().startswith('ATOM')
    assert (out / 'batch' / 'conotoxin' / 'ranked_0.pdb').exists()         # alphafold-batch, local executor
    assert re.search(r'conotoxin\s+done\s+cpu_stage', res.stdout), res.stdout
    assert 'USING RANDOM TEST WEIGHTS' in res.stderr
    assert 'memory mode default (requested auto, longest protein 24 residues, threshold 1000)' in res.stderr


def test_check_install_runs_the_tools_inside_the_environment(installed_kit, kit_site):
    res = subprocess.run(['make', '-s', 'check-install', 'PREFIX=%s' % installed_kit],
                         cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode == 0, res.stdout
    for line in ('OK   venv runtime present', 'OK   jackhmmer runs', 'OK   hhblits runs', 'OK   kalign 2.04 found',
                 'OK   python imports alphafold, fold_runtime, data_sync',
                 'OK   data directory readable: %s/shared/current' % kit_site):
        assert line in res.stdout, line
    res = subprocess.run(['make', '-s', 'check-install', 'PREFIX=%s' % installed_kit, 'GPU=1'],
                         cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert res.returncode != 0 and 'FAIL a GPU is visible to jax' in res.stdout   # no GPU on this machine
