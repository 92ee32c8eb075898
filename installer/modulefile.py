"""One modulefile source, rendered for Lmod (Lua) and environment-modules (Tcl).

`spec()` lists what the module does; the templates modulefiles/alphafold.lua.in and
alphafold.tcl.in only spell it, with every value made a string literal here by lua_quote() or
tcl_quote(). The module sets no ALPHAFOLD_DATA_DIR: `module load` runs on a login node and sbatch
exports what it set, so a choice made there would be wrong on compute nodes; each job chooses on
its node (fold_runtime.options.resolve_data_dir). Variables are set with pushenv where the module
system has it (Lmod; environment-modules >= 5.1), so unloading restores a value the user had;
environment-modules 4.x gets setenv.
"""
import os

from installer import ROOT
from installer.template import render
from kit_common.errors import KitError

TEMPLATES = os.path.join(ROOT, 'modulefiles')


def spec(version, variant, vardir, runtime_env):
    """What loading the module does. vardir: the variant's directory, PREFIX/<version>/<variant>;
    runtime_env: the ALPHAFOLD_IMAGE or ALPHAFOLD_ENV variable of the install method, as
    {name: runtime}. A KitError for a value no modulefile can carry."""
    # No copies of site settings: the runtime reads the site config itself, so editing it applies.
    env = [('ALPHAFOLD_KIT_VERSION', version), ('ALPHAFOLD_KIT_VARIANT', variant),
           ('ALPHAFOLD_SITE_CONFIG', vardir + '/etc/site.conf')] + list(runtime_env.items())
    for name, value in env:   # PREFIX is in ALPHAFOLD_SITE_CONFIG and the runtime's path
        check_value(name, value)
    return {
        'whatis': 'AlphaFold %s (%s): split CPU/GPU stages, batch mode, database staging' % (version, variant),
        'help': render(os.path.join(TEMPLATES, 'help.txt.in'), {'version': version, 'variant': variant}).rstrip('\n'),
        'conflict': 'alphafold',
        'environment': env,
        'prepend_path': [('PATH', vardir + '/bin')],
    }


def check_value(name, value):
    """An environment variable holds no NUL, and a newline or other control character (a tab
    aside) would break the modulefile or the shells that read the variable: refused, named."""
    bad = sorted({c for c in value if (ord(c) < 32 and c != '\t') or ord(c) == 127})
    if bad:
        raise KitError('the module would set %s to %r, which holds %s' % (name, value, ', '.join(repr(c) for c in bad)),
                       'remove it from the site config value (or from PREFIX)')


def lua_quote(value):
    """A Lua string literal that reads back as exactly value."""
    for char, escape in (('\\', '\\\\'), ('"', '\\"'), ('\n', '\\n'), ('\r', '\\r')):
        value = value.replace(char, escape)
    return '"%s"' % value


def tcl_quote(value):
    """A Tcl double-quoted word that reads back as exactly value: no $, [ ] or \\ substitution."""
    return '"%s"' % ''.join('\\' + c if c in '\\"$[]' else c for c in value)


def lua(s):
    q = lua_quote
    return render(os.path.join(TEMPLATES, 'alphafold.lua.in'), dict(
        whatis=q(s['whatis']), help=s['help'], conflict=q(s['conflict']),
        environment='\n'.join('pushenv(%s, %s)' % (q(k), q(v)) for k, v in s['environment']),
        prepend_path='\n'.join('prepend_path(%s, %s)' % (q(k), q(v)) for k, v in s['prepend_path'])))


def tcl(s):
    q = tcl_quote
    # Module and variable names are plain words; only values need quoting.
    return render(os.path.join(TEMPLATES, 'alphafold.tcl.in'), dict(
        whatis=q(s['whatis']), conflict=s['conflict'],
        help='\n'.join('    puts stderr %s' % q(line) for line in s['help'].splitlines()),
        environment='\n'.join('af_env %s %s' % (k, q(v)) for k, v in s['environment']),
        prepend_path='\n'.join('prepend-path %s %s' % (k, q(v)) for k, v in s['prepend_path'])))


def version_file(name):
    """The .version file that makes `name` the default of `module load alphafold` (Lmod reads
    it too)."""
    return '#%%Module1.0\nset ModulesVersion %s\n' % tcl_quote(name)
