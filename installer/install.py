"""make install / uninstall / check-install.

PREFIX/<version>/bin/        wrappers (alphafold-msa, -predict, -run, -batch, -data)
PREFIX/<version>/etc/        site.conf (the one site config) and runtime.env (method, image/env)
PREFIX/<version>/images/     Apptainer images (METHOD=apptainer)
PREFIX/<version>/envs/       conda or venv environments (METHOD=conda|venv)
PREFIX/modulefiles/alphafold/<version>-<variant>{,.lua}   Tcl and Lua modulefiles

A build goes into a new file or directory and is switched in (runtime.env rewritten atomically)
only when it succeeded, so a failed build leaves the previous install usable. Needs only the
Python standard library: it runs on login nodes without the kit's stack.
"""
import os
import shutil
import subprocess
import sys
import time

from fold_runtime import __version__, site_config
from fold_runtime.atomic import write_text
from fold_runtime.errors import EXIT_MISSING, KitError
from installer import modulefile, recipes

ROOT = recipes.ROOT
COMMANDS = ('alphafold-msa', 'alphafold-predict', 'alphafold-run', 'alphafold-batch', 'alphafold-data')


def version_dir(prefix, version=__version__):
    return os.path.join(os.path.abspath(prefix), version)


def run(cmd, log, **kw):
    log('+ ' + ' '.join(cmd))
    subprocess.run(cmd, check=True, **kw)


def build_apptainer(vdir, variant, log):
    if not shutil.which('apptainer'):
        raise KitError('apptainer not found on PATH (METHOD=apptainer builds an image)',
                       'install Apptainer or load its module, or use METHOD=conda or METHOD=venv', EXIT_MISSING)
    images = os.path.join(vdir, 'images')
    os.makedirs(images, exist_ok=True)
    image = os.path.join(images, 'alphafold-%s.sif' % variant)
    tmp = image + '.building'
    cmd = ['apptainer', 'build'] + (['--fakeroot'] if os.geteuid() != 0 else []) + [
        '--force', tmp, os.path.join(recipes.RECIPES, variant + '.def')]
    run(cmd, log, cwd=ROOT)
    os.replace(tmp, image)
    return image


def build_conda(vdir, variant, log):
    tool = shutil.which('mamba') or shutil.which('conda')
    if not tool:
        raise KitError('neither mamba nor conda found on PATH (METHOD=conda)',
                       'load a conda/mamba module, or use METHOD=venv or METHOD=apptainer', EXIT_MISSING)
    env = new_env_dir(vdir, variant)
    run([tool, 'env', 'create', '-y', '-p', env, '-f', os.path.join(recipes.RECIPES, variant + '.conda.yml')], log)
    run([os.path.join(env, 'bin', 'python'), '-m', 'pip', 'install', '-q', '--no-deps', ROOT], log)
    return env


def build_venv(vdir, variant, log, python=sys.executable):
    env = new_env_dir(vdir, 'venv')
    run([python, '-m', 'venv', env], log)
    pip = [os.path.join(env, 'bin', 'python'), '-m', 'pip', 'install', '-q']
    run(pip + ['-r', os.path.join(ROOT, 'requirements.txt')], log)
    run(pip + ['--no-deps', ROOT], log)
    return env


def new_env_dir(vdir, name):
    """A fresh directory per build: the running install keeps its own until the switch."""
    envs = os.path.join(vdir, 'envs')
    os.makedirs(envs, exist_ok=True)
    return os.path.join(envs, '%s-%s' % (name, time.strftime('%Y%m%d%H%M%S')))


BUILDERS = {'apptainer': build_apptainer, 'conda': build_conda, 'venv': build_venv}


def install(prefix, variant, method, site_config_path=None, log=print):
    rows = recipes.variants()
    if variant not in rows:
        raise KitError('unknown VARIANT %r' % variant, 'choose one of %s (recipes/variants.ini)' % ', '.join(rows))
    if method not in BUILDERS:
        raise KitError('unknown METHOD %r' % method, 'choose apptainer, conda or venv')
    site_config.load(site_config_path)   # fail early on a malformed file, before any build
    vdir = version_dir(prefix)
    previous = read_runtime_env(vdir).get('KIT_RUNTIME')
    runtime = BUILDERS[method](vdir, variant, log)
    for sub in ('bin', 'etc'):
        os.makedirs(os.path.join(vdir, sub), exist_ok=True)
    conf = os.path.join(vdir, 'etc', 'site.conf')
    if site_config_path:
        shutil.copyfile(site_config_path, conf + '.new')
        os.replace(conf + '.new', conf)
    elif not os.path.exists(conf):
        shutil.copyfile(os.path.join(ROOT, 'installer', 'site.conf.example'), conf)
    install_wrappers(vdir)
    # The switch: from here on, wrappers and modules use the new build.
    write_text(os.path.join(vdir, 'etc', 'runtime.env'),
               'KIT_METHOD=%s\nKIT_RUNTIME=%s\nKIT_VARIANT=%s\n' % (method, shell_quote(runtime), variant))
    install_modulefiles(prefix, vdir, variant, method, runtime, site_config.load(conf))
    if previous and previous != runtime and os.path.isdir(previous) and '/envs/' in previous:
        shutil.rmtree(previous, ignore_errors=True)
    log('installed AlphaFold HPC kit %s (%s, %s) in %s' % (__version__, variant, method, vdir))
    log('  module use %s && module load alphafold/%s-%s' % (os.path.join(os.path.abspath(prefix), 'modulefiles'),
                                                           __version__, variant))


def shell_quote(value):
    return "'%s'" % value.replace("'", "'\\''")


def read_runtime_env(vdir):
    """runtime.env as a dict (values unquoted)."""
    path = os.path.join(vdir, 'etc', 'runtime.env')
    if not os.path.exists(path):
        return {}
    out = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.strip().partition('=')
            if key:
                out[key] = value[1:-1].replace("'\\''", "'") if value.startswith("'") else value
    return out


def install_wrappers(vdir):
    bindir = os.path.join(vdir, 'bin')
    target = os.path.join(bindir, 'alphafold-kit-wrapper')
    shutil.copyfile(os.path.join(ROOT, 'installer', 'wrapper.sh'), target + '.new')
    os.chmod(target + '.new', 0o755)
    os.replace(target + '.new', target)
    for name in COMMANDS:
        link = os.path.join(bindir, name)
        if not os.path.islink(link):
            os.symlink('alphafold-kit-wrapper', link)


def install_modulefiles(prefix, vdir, variant, method, runtime, site):
    mdir = os.path.join(os.path.abspath(prefix), 'modulefiles', 'alphafold')
    os.makedirs(mdir, exist_ok=True)
    runtime_env = {'ALPHAFOLD_IMAGE': runtime} if method == 'apptainer' else {'ALPHAFOLD_ENV': runtime}
    s = modulefile.spec(__version__, variant, vdir, site, runtime_env)
    name = '%s-%s' % (__version__, variant)
    write_text(os.path.join(mdir, name + '.lua'), modulefile.lua(s))
    write_text(os.path.join(mdir, name), modulefile.tcl(s))
    # The newest install is the default for `module load alphafold` (Lmod and Tcl both read it).
    write_text(os.path.join(mdir, '.version'), '#%%Module1.0\nset ModulesVersion "%s"\n' % name)


def uninstall(prefix, variant, log=print):
    vdir = version_dir(prefix)
    mdir = os.path.join(os.path.abspath(prefix), 'modulefiles', 'alphafold')
    name = '%s-%s' % (__version__, variant)
    for path in (os.path.join(mdir, name), os.path.join(mdir, name + '.lua')):
        if os.path.exists(path):
            os.unlink(path)
    if read_runtime_env(vdir).get('KIT_VARIANT') == variant:
        shutil.rmtree(vdir, ignore_errors=True)
    version_file = os.path.join(mdir, '.version')
    if os.path.exists(version_file) and name in open(version_file).read():
        os.unlink(version_file)
    log('removed %s from %s' % (name, os.path.abspath(prefix)))


def check_install(prefix, want_gpu=False, log=print):
    """Each check prints OK or FAIL; returns the number of failures."""
    vdir = version_dir(prefix)
    env = read_runtime_env(vdir)
    if not env:
        raise KitError('no installation in %s' % vdir, 'run make install PREFIX=%s first' % prefix, EXIT_MISSING)
    method, runtime = env['KIT_METHOD'], env['KIT_RUNTIME']
    exec_prefix = ['apptainer', 'exec', runtime] if method == 'apptainer' else []
    python = 'python' if method == 'apptainer' else os.path.join(runtime, 'bin', 'python')
    tool_path = os.environ.get('PATH', '')
    if method == 'conda':
        tool_path = os.path.join(runtime, 'bin') + os.pathsep + tool_path
    site = site_config.load(os.path.join(vdir, 'etc', 'site.conf'))
    from data_sync.layout import choose_data_dir
    data_dir = os.environ.get('ALPHAFOLD_DATA_DIR') or choose_data_dir(
        site['data']['shared_root'], site['data']['local_root'])[0]
    checks = [('%s runtime present: %s' % (method, runtime), lambda: os.path.exists(runtime))]
    for tool in ('jackhmmer', 'hhblits', 'hhsearch', 'kalign'):
        checks.append(('%s runs' % tool, _runs(exec_prefix + [tool, '-h'], tool_path)))
    checks.append(('python imports alphafold, fold_runtime, data_sync',
                   _runs(exec_prefix + [python, '-c', 'import alphafold, fold_runtime, data_sync'], tool_path)))
    checks.append(('data directory readable: %s' % data_dir,
                   lambda: os.path.isdir(data_dir) and os.access(data_dir, os.R_OK | os.X_OK)))
    if want_gpu:
        nv = exec_prefix[:2] + ['--nv'] + exec_prefix[2:] if exec_prefix else []
        checks.append(('a GPU is visible to jax', _runs(nv + [python, '-c',
                       'import jax, sys; sys.exit(0 if jax.devices("gpu") else 1)'], tool_path)))
    failures = 0
    for label, check in checks:
        ok = check()
        failures += not ok
        log('%-4s %s' % ('OK' if ok else 'FAIL', label))
    return failures


def _runs(cmd, path):
    def check():
        try:
            return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=dict(os.environ, PATH=path), timeout=300).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False
    return check
