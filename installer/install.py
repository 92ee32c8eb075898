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
import logging
import os
import shlex
import shutil
import subprocess

from data_sync.layout import choose_data_dir
from fold_runtime import __version__
from installer import ROOT, methods, modulefile, recipes
from kit_common import site_config, tools
from kit_common.errors import EXIT_MISSING, KitError
from kit_common.files import make_dirs, write_bytes, write_text

logger = logging.getLogger(__name__)

COMMANDS = ('alphafold-msa', 'alphafold-predict', 'alphafold-run', 'alphafold-batch', 'alphafold-data')
GPU_PROBE = 'import jax, sys; sys.exit(0 if jax.devices("gpu") else 1)'
KALIGN_PROBE = 'from fold_runtime.cpu_stage import binaries; binaries.resolve("kalign")'


def version_dir(prefix, version=__version__):
    return os.path.join(os.path.abspath(prefix), version)


def module_dir(prefix):
    return os.path.join(os.path.abspath(prefix), 'modulefiles', 'alphafold')


def module_name(variant):
    return '%s-%s' % (__version__, variant)


def install(prefix, variant, method_name, site_config_path=None):
    rows = recipes.variants()
    if variant not in rows:
        raise KitError('unknown VARIANT %r' % variant, 'choose one of %s (recipes/variants.ini)' % ', '.join(rows))
    method = methods.get(method_name)
    site_config.load(site_config_path)   # fail early on a malformed file, before any build
    vdir = version_dir(prefix)
    previous = read_runtime_env(vdir).get('KIT_RUNTIME')
    runtime = method.build(vdir, variant)
    for sub in ('bin', 'etc'):
        make_dirs(os.path.join(vdir, sub))
    conf = install_site_config(vdir, site_config_path)
    install_wrappers(vdir)
    # The switch: from here on, wrappers and modules use the new build.
    write_runtime_env(vdir, method.name, runtime, variant)
    install_modulefiles(prefix, vdir, variant, method, runtime, site_config.load(conf))
    # Environments are dated directories, so the replaced one is removed; an image was replaced in place.
    if previous and previous != runtime and os.path.isdir(previous) and '/envs/' in previous:
        shutil.rmtree(previous, ignore_errors=True)
    logger.info('installed AlphaFold HPC kit %s (%s, %s) in %s', __version__, variant, method.name, vdir)
    logger.info('  module use %s && module load alphafold/%s',
                os.path.join(os.path.abspath(prefix), 'modulefiles'), module_name(variant))


def install_site_config(vdir, path):
    """etc/site.conf: the given file, else the one installed before, else the documented example."""
    conf = os.path.join(vdir, 'etc', 'site.conf')
    if path or not os.path.exists(conf):
        with open(path or os.path.join(ROOT, 'installer', 'site.conf.example'), 'rb') as f:
            write_bytes(conf, f.read())
    return conf


def write_runtime_env(vdir, method_name, runtime, variant):
    """etc/runtime.env, which the wrappers read with bash's `source`."""
    write_text(os.path.join(vdir, 'etc', 'runtime.env'), 'KIT_METHOD=%s\nKIT_RUNTIME=%s\nKIT_VARIANT=%s\n'
               % (shlex.quote(method_name), shlex.quote(runtime), shlex.quote(variant)))


def read_runtime_env(vdir):
    """runtime.env as a dict, unquoted as bash's `source` reads it."""
    path = os.path.join(vdir, 'etc', 'runtime.env')
    if not os.path.exists(path):
        return {}
    with open(path, encoding='utf-8') as f:
        words = shlex.split(f.read(), comments=True)
    return dict(word.split('=', 1) for word in words if '=' in word)


def install_wrappers(vdir):
    bindir = os.path.join(vdir, 'bin')
    target = os.path.join(bindir, 'alphafold-kit-wrapper')
    shutil.copyfile(os.path.join(ROOT, 'installer', 'wrapper.sh'), target + '.new')
    os.chmod(target + '.new', 0o755)   # explicit, not from the umask: every user runs it
    os.replace(target + '.new', target)
    for name in COMMANDS:
        link = os.path.join(bindir, name)
        if not os.path.islink(link):
            os.symlink('alphafold-kit-wrapper', link)


def install_modulefiles(prefix, vdir, variant, method, runtime, site):
    mdir = module_dir(prefix)
    make_dirs(mdir)
    s = modulefile.spec(__version__, variant, vdir, site, {method.runtime_var: runtime})
    name = module_name(variant)
    write_text(os.path.join(mdir, name + '.lua'), modulefile.lua(s))
    write_text(os.path.join(mdir, name), modulefile.tcl(s))
    # The newest install is the default for `module load alphafold` (Lmod and Tcl both read it).
    write_text(os.path.join(mdir, '.version'), modulefile.version_file(name))


def uninstall(prefix, variant):
    vdir = version_dir(prefix)
    mdir = module_dir(prefix)
    name = module_name(variant)
    for path in (os.path.join(mdir, name), os.path.join(mdir, name + '.lua')):
        if os.path.exists(path):
            os.unlink(path)
    if read_runtime_env(vdir).get('KIT_VARIANT') == variant:
        shutil.rmtree(vdir, ignore_errors=True)
    version_file = os.path.join(mdir, '.version')
    if os.path.exists(version_file):
        with open(version_file, encoding='utf-8') as f:
            is_default = name in f.read()
        if is_default:
            os.unlink(version_file)
    logger.info('removed %s from %s', name, os.path.abspath(prefix))


def check_install(prefix, want_gpu=False):
    """Each check prints OK or FAIL; returns the number of failures."""
    vdir = version_dir(prefix)
    env = read_runtime_env(vdir)
    if not env:
        raise KitError('no installation in %s' % vdir, 'run make install PREFIX=%s first' % prefix, EXIT_MISSING)
    method, runtime = methods.get(env['KIT_METHOD']), env['KIT_RUNTIME']
    path = method.tool_path(runtime)
    site = site_config.load(os.path.join(vdir, 'etc', 'site.conf'))
    data_dir = os.environ.get('ALPHAFOLD_DATA_DIR') or choose_data_dir(site.data.shared_root,
                                                                       site.data.local_root)[0]
    checks = [('%s runtime present: %s' % (method.name, runtime), lambda: os.path.exists(runtime))]
    for tool in ('jackhmmer', 'hhblits', 'hhsearch'):
        checks.append(('%s runs' % tool, _runs(method.command(runtime, [tool, '-h']), path)))
    checks.append(('kalign 2.04 found (template realignment as DeepMind\'s)',
                   _runs(method.python(runtime, KALIGN_PROBE), path)))
    checks.append(('python imports alphafold, fold_runtime, data_sync',
                   _runs(method.python(runtime, 'import alphafold, fold_runtime, data_sync'), path)))
    checks.append(('data directory readable: %s' % data_dir,
                   lambda: os.path.isdir(data_dir) and os.access(data_dir, os.R_OK | os.X_OK)))
    if want_gpu:
        checks.append(('a GPU is visible to jax', _runs(method.python(runtime, GPU_PROBE, gpu=True), path)))
    failures = 0
    for label, check in checks:
        ok = check()
        failures += not ok
        print('%-4s %s' % ('OK' if ok else 'FAIL', label), flush=True)
    return failures


def _runs(cmd, path):
    def check():
        try:
            tools.run(cmd, cmd[0], '', timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                      env=dict(os.environ, PATH=path))
        except (KitError, OSError):   # failed, missing, not executable or timed out
            return False
        return True
    return check
