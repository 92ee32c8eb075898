"""make install / uninstall / check-install.

PREFIX/<version>/<variant>/bin/      wrappers (alphafold-msa, -predict, -run, -batch, -data)
PREFIX/<version>/<variant>/etc/      site.conf (the site config) and runtime.env (method, image/env)
PREFIX/<version>/<variant>/images/   one directory per build: the Apptainer image and lib/ (METHOD=apptainer)
PREFIX/<version>/<variant>/envs/     one conda or venv environment per build (METHOD=conda|venv)
PREFIX/modulefiles/alphafold/<version>-<variant>{,.lua}   Tcl and Lua modulefiles

Each variant has its own directory, so variants install, run and uninstall side by side. A build
goes into a new directory and is switched in (runtime.env rewritten atomically) only when it
succeeded; the previous build stays for the jobs that run from it (installer/builds.py). Needs
only the Python standard library: it runs on login nodes without the kit's stack.
"""
import glob
import logging
import os
import re
import shlex
import shutil
import subprocess

from data_sync.layout import choose_data_dir
from fold_runtime import __version__
from installer import ROOT, builds, methods, modulefile, recipes, template, wrapper_binds
from kit_common import commands, locks, site_config, tools
from kit_common.errors import EXIT_INPUT, EXIT_MISSING, KitError
from kit_common.files import make_dirs, write_bytes, write_text

logger = logging.getLogger(__name__)

EXAMPLE_SITE_CONFIG = os.path.join(ROOT, 'installer', 'site.conf.example')


def version_dir(prefix, version=__version__):
    return os.path.join(os.path.abspath(prefix), version)


def variant_dir(prefix, variant):
    return os.path.join(version_dir(prefix), variant)


def module_dir(prefix):
    return os.path.join(os.path.abspath(prefix), 'modulefiles', 'alphafold')


def module_name(variant):
    return '%s-%s' % (__version__, variant)


def installed_variants(prefix):
    vdir = version_dir(prefix)
    return sorted(name for name in (os.listdir(vdir) if os.path.isdir(vdir) else ())
                  if os.path.exists(os.path.join(vdir, name, 'etc', 'runtime.env')))


def install(prefix, variant, method_name, site_config_path=None, alphafold_source=None, make_default=False):
    """Everything is checked (the inputs, then the modulefiles' text) before anything is written.
    make_default: this variant becomes the default module even when another one is."""
    method, vardir, conf_source = checked_inputs(prefix, variant, method_name, site_config_path, alphafold_source)
    build = builds.new(vardir, method.folder)
    runtime = method.runtime(build, variant)
    texts = modulefile_texts(vardir, variant, method, runtime)
    make_dirs(os.path.dirname(build))
    with locks.exclusive(vardir, 'make install VARIANT=%s' % variant):
        previous = read_runtime_env(vardir).get('KIT_RUNTIME')
        builds.make(build, lambda: method.build(build, variant, recipes.variants()[variant], alphafold_source))
        for sub in ('bin', 'etc'):
            make_dirs(os.path.join(vardir, sub))
        install_site_config(vardir, conf_source)
        install_wrappers(vardir)
        # The switch: from here on, wrappers and modules use the new build.
        write_runtime_env(vardir, method.name, runtime, variant)
        install_modulefiles(prefix, variant, texts, make_default)
        builds.prune(vardir, build, previous and builds.containing(vardir, previous))
    logger.info('installed AlphaFold HPC kit %s (%s, %s) in %s', __version__, variant, method.name, vardir)
    logger.info('  module use %s && module load alphafold/%s',
                os.path.join(os.path.abspath(prefix), 'modulefiles'), module_name(variant))


def checked_inputs(prefix, variant, method_name, site_config_path, alphafold_source=None):
    """(method, variant directory, site config to install), or a KitError."""
    rows = recipes.variants()
    if variant not in rows:
        raise KitError('unknown VARIANT %r' % variant, 'choose one of %s (recipes/variants.ini)' % ', '.join(rows))
    method = methods.get(method_name)
    method.check(variant, rows[variant], alphafold_source)
    method.tool()
    vardir = variant_dir(prefix, variant)
    conf_source = site_config_source(vardir, site_config_path)
    check_separators(method, vardir, site_config.load(conf_source))
    return method, vardir, conf_source


def site_config_source(vardir, path):
    """The site config to install: the given file, else this variant's installed one, else
    another installed variant's (of this version), else the documented example."""
    if path:
        return path
    siblings = sorted(glob.glob(os.path.join(glob.escape(os.path.dirname(vardir)), '*', 'etc', 'site.conf')))
    return next((p for p in [os.path.join(vardir, 'etc', 'site.conf')] + siblings if os.path.exists(p)),
                EXAMPLE_SITE_CONFIG)


def check_separators(method, vardir, site):
    """A ':' in the install directory would split PATH; with Apptainer, a ',' or ':' in a
    directory the wrapper binds would split --bind."""
    for what, path in method.paths_to_check(vardir, site):
        bad = sorted(set(method.separators) & set(path or ''))
        if bad:
            raise KitError('%s %r holds %s, which %s cannot take' % (
                what, path, ' and '.join(repr(c) for c in bad),
                "Apptainer's --bind" if method.separators != ':' else 'PATH'),
                'choose a PREFIX and site directories without %s' % ' or '.join(repr(c) for c in method.separators))


def modulefile_texts(vardir, variant, method, runtime):
    """{file name: text} of the Lua and Tcl modulefiles; a KitError for values they cannot carry."""
    s = modulefile.spec(__version__, variant, vardir, {method.runtime_var: runtime})
    name = module_name(variant)
    return {name + '.lua': modulefile.lua(s), name: modulefile.tcl(s)}


def install_site_config(vardir, source):
    conf = os.path.join(vardir, 'etc', 'site.conf')
    if os.path.abspath(source) != conf:
        with open(source, 'rb') as f:
            write_bytes(conf, f.read())


def write_runtime_env(vardir, method_name, runtime, variant):
    """etc/runtime.env, which the wrappers read with bash's `source`."""
    write_text(os.path.join(vardir, 'etc', 'runtime.env'), 'KIT_METHOD=%s\nKIT_RUNTIME=%s\nKIT_VARIANT=%s\n'
               % (shlex.quote(method_name), shlex.quote(runtime), shlex.quote(variant)))


def read_runtime_env(vardir):
    """runtime.env as a dict, unquoted as bash's `source` reads it."""
    path = os.path.join(vardir, 'etc', 'runtime.env')
    if not os.path.exists(path):
        return {}
    with open(path, encoding='utf-8') as f:
        words = shlex.split(f.read(), comments=True)
    return dict(word.split('=', 1) for word in words if '=' in word)


def install_wrappers(vardir):
    bindir = os.path.join(vardir, 'bin')
    target = os.path.join(bindir, 'alphafold-kit-wrapper')
    write_text(target + '.new', template.render(os.path.join(ROOT, 'installer', 'wrapper.sh'),
                                                dict(wrapper_binds.values(), commands=commands.wrapper_table(),
                                                     exit_input=EXIT_INPUT, exit_missing=EXIT_MISSING)))
    os.chmod(target + '.new', 0o755)   # explicit, not from the umask: every user runs it
    os.replace(target + '.new', target)
    for name in commands.NAMES:
        link = os.path.join(bindir, name)
        if not os.path.islink(link):
            os.symlink('alphafold-kit-wrapper', link)


def install_modulefiles(prefix, variant, texts, make_default=False):
    mdir = module_dir(prefix)
    make_dirs(mdir)
    for name, text in texts.items():
        write_text(os.path.join(mdir, name), text)
    set_default(mdir, module_name(variant), make_default)


def set_default(mdir, name, asked):
    """Make name the default of `module load alphafold` (.version: Lmod and Tcl both read it) when
    there is no default yet, or the admin asks: another variant's install must not change what
    every unversioned `module load alphafold` gets. Either way the log says which is the default."""
    current = default_module(mdir)
    if current and current != name and not asked and os.path.exists(os.path.join(mdir, current)):
        logger.info('  the default module stays alphafold/%s; to make this one the default: '
                    'make install ... DEFAULT=yes (or --make-default)', current)
        return
    write_text(os.path.join(mdir, '.version'), modulefile.version_file(name))
    logger.info('  the default module is now alphafold/%s%s', name,
                ' (it was alphafold/%s)' % current if current and current != name else '')


def chosen_variant(prefix, variant, command):
    """VARIANT as given, else the only one installed; with several installed, a KitError that lists them."""
    installed = installed_variants(prefix)
    if variant:
        return variant
    if not installed:
        raise KitError('no installation in %s' % version_dir(prefix), 'run make install PREFIX=%s first' % prefix,
                       EXIT_MISSING)
    if len(installed) > 1:
        raise KitError('%d variants are installed in %s: %s' % (len(installed), version_dir(prefix),
                                                                ', '.join(installed)),
                       'name one: make %s PREFIX=%s VARIANT=%s' % (command, prefix, installed[0]))
    return installed[0]


def uninstall(prefix, variant=None):
    """Remove one variant: its directory and modulefiles, and the default if it names this variant.
    Refused while a process on this host runs from it."""
    variant = chosen_variant(prefix, variant, 'uninstall')
    vardir, mdir, name = variant_dir(prefix, variant), module_dir(prefix), module_name(variant)
    users = builds.users_of(vardir) if os.path.isdir(vardir) else []
    if users:
        raise KitError('%s is in use by %s' % (vardir, ', '.join(users)),
                       'wait for those jobs to end (or stop them), then rerun make uninstall')
    for path in (os.path.join(mdir, name), os.path.join(mdir, name + '.lua')):
        if os.path.exists(path):
            os.unlink(path)
    if default_module(mdir) == name:
        os.unlink(os.path.join(mdir, '.version'))
    shutil.rmtree(vardir, ignore_errors=True)
    if os.path.isdir(version_dir(prefix)) and not os.listdir(version_dir(prefix)):
        os.rmdir(version_dir(prefix))
    logger.info('removed %s from %s', name, os.path.abspath(prefix))


def default_module(mdir):
    """The module that .version makes the default, or None."""
    try:
        with open(os.path.join(mdir, '.version'), encoding='utf-8') as f:
            match = re.search(r'^set\s+ModulesVersion\s+"?([^"\s]+)"?\s*$', f.read(), re.MULTILINE)
    except FileNotFoundError:
        return None
    return match.group(1) if match else None


def check_install(prefix, variant=None, want_gpu=False):
    """Each check prints OK or FAIL; returns the number of failures."""
    vardir = variant_dir(prefix, chosen_variant(prefix, variant, 'check-install'))
    env = read_runtime_env(vardir)
    if not env:
        raise KitError('no installation in %s' % vardir, 'run make install PREFIX=%s VARIANT=%s first, or name '
                       'an installed one: %s' % (prefix, variant, ', '.join(installed_variants(prefix)) or 'none'),
                       EXIT_MISSING)
    method, runtime = methods.get(env['KIT_METHOD']), env['KIT_RUNTIME']
    # The runtime's commands get the environment the wrapper gives it (conda: its bin/ and lib/ first).
    inside = dict(method.environment(runtime), ALPHAFOLD_KIT_VARIANT=env.get('KIT_VARIANT', ''))
    site = site_config.load(os.path.join(vardir, 'etc', 'site.conf'))
    data_dir = os.environ.get('ALPHAFOLD_DATA_DIR') or choose_data_dir(site.data.shared_root,
                                                                       site.data.local_root)[0]
    checks = [('%s runtime present: %s' % (method.name, runtime), lambda: os.path.exists(runtime))]
    for tool in ('jackhmmer', 'hhblits', 'hhsearch'):
        checks.append(('%s runs' % tool, _runs(method.command(runtime, [tool, '-h']), inside)))
    checks.append(('data directory readable: %s' % data_dir,
                   lambda: os.path.isdir(data_dir) and os.access(data_dir, os.R_OK | os.X_OK)))
    # The wrapper as a user runs it, from the host's environment.
    checks.append(('alphafold-msa --version', _runs([os.path.join(vardir, 'bin', 'alphafold-msa'), '--version'],
                                                    dict(os.environ))))
    failures = 0
    for label, check in checks:
        ok = check()
        failures += not ok
        print('%-4s %s' % ('OK' if ok else 'FAIL', label), flush=True)
    return failures + stack_check(method, runtime, inside, want_gpu)


def stack_check(method, runtime, env, want_gpu):
    """fold_runtime.stack_check inside the runtime (with the GPUs when want_gpu), in env: its
    OK/FAIL lines, and the number of failures."""
    cmd = method.command(runtime, [method.interpreter(runtime), '-m', 'fold_runtime.stack_check']
                         + (['--gpu'] if want_gpu else []), gpu=want_gpu)
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env)
    lines = [l for l in res.stdout.splitlines() if l.startswith(('OK ', 'FAIL '))]
    for line in lines:
        print(line, flush=True)
    if res.returncode and not any(l.startswith('FAIL ') for l in lines):   # it could not even start
        print('FAIL the stack check ran (exit %d): %s' % (res.returncode, res.stdout.strip()[-500:]), flush=True)
        return 1
    return sum(l.startswith('FAIL ') for l in lines)


def _runs(cmd, env):
    def check():
        try:
            tools.run(cmd, cmd[0], '', timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        except (KitError, OSError):   # failed, missing, not executable or timed out
            return False
        return True
    return check
