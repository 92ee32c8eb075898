"""Quoting and templates, checked by the interpreters that read them: nasty values rendered as Lua,
Tcl and shell literals read back exactly; rendered modulefiles run under stand-in module commands
(real Lmod and environment-modules: tests/integration/test_modules.py); templates leave no
placeholder behind and clash with nothing in the languages they hold."""
import glob
import os
import shutil
import subprocess

import pytest

from fold_runtime import __version__
from installer import ROOT, install, modulefile, recipes
from installer.template import Template

NASTY = ['plain', '', 'with  spaces ', "it's", 'say "hi"', 'back\\slash', 'trailing\\', '\\"', '$HOME ${x} $',
         '$(id) `id`', '[exec id] ]', '{braced} }{', '100% %s %d %%', ']]==] ]==] --[[', '@{version} @',
         'tab\there', 'line\nbreak', 'ünïcödé ✓ 日本', ';&|<>*?~#!']
SEP, END = '\x1f', '\x1e'   # field and record separators of the stand-in module commands


def interpreter(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError('none of %s installed: make deps installs lmod (lua) and tcl' % ', '.join(names))


def read_back(cmd, tmp_path, script, *args):
    """(stdout, stderr) of the interpreter cmd running script with args."""
    path = tmp_path / 'script'
    path.write_bytes(script.encode('utf-8'))
    res = subprocess.run(cmd + [str(path)] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert res.returncode == 0, res.stderr.decode('utf-8', 'replace')
    return res.stdout.decode('utf-8'), res.stderr.decode('utf-8')


@pytest.mark.parametrize('value', NASTY)
def test_lua_literal_reads_back_exactly(value, tmp_path):
    lua = interpreter('lua5.4', 'lua5.3', 'lua', 'texlua')
    assert read_back([lua], tmp_path, 'io.write(%s)\n' % modulefile.lua_quote(value))[0] == value


@pytest.mark.parametrize('value', NASTY)
def test_tcl_literal_reads_back_exactly(value, tmp_path):
    tclsh = interpreter('tclsh')
    script = 'fconfigure stdout -encoding utf-8 -translation lf\nputs -nonewline %s\n' % modulefile.tcl_quote(value)
    assert read_back([tclsh, '-encoding', 'utf-8'], tmp_path, script)[0] == value


@pytest.mark.parametrize('value', NASTY)
def test_runtime_env_reads_back_exactly_in_bash_and_in_python(value, tmp_path):
    (tmp_path / 'etc').mkdir()
    install.write_runtime_env(str(tmp_path), 'venv', value, 'cuda12')
    script = 'source "%s/etc/runtime.env"; printf %%s "$KIT_RUNTIME"' % tmp_path
    assert read_back(['bash'], tmp_path, script)[0] == value
    assert install.read_runtime_env(str(tmp_path)) == {'KIT_METHOD': 'venv', 'KIT_RUNTIME': value,
                                                       'KIT_VARIANT': 'cuda12'}


LUA_STANDINS = r'''
local function out(...) io.write(table.concat({...}, "\31"), "\30") end
function whatis(s) out("whatis", s) end
function help(s) out("help", s) end
function conflict(s) out("conflict", s) end
function pushenv(k, v) out("pushenv", k, v) end
function prepend_path(k, v) out("prepend_path", k, v) end
function isDir(path) local f = io.open(path, "r") if f then f:close() end return f ~= nil end
dofile(arg[1])
'''
TCL_STANDINS = r'''
fconfigure stdout -encoding utf-8 -translation lf
fconfigure stderr -encoding utf-8 -translation lf
proc out {args} { puts -nonewline "[join $args \x1f]\x1e" }
proc module-whatis {s} { out whatis $s }
proc conflict {s} { out conflict $s }
proc pushenv {k v} { out pushenv $k $v }
proc prepend-path {k v} { out prepend_path $k $v }
set f [open [lindex $argv 0]]
fconfigure $f -encoding utf-8
eval [read $f]
close $f
ModulesHelp
'''
# environment-modules 4.x: setenv, no pushenv.
TCL4_STANDINS = TCL_STANDINS.replace('proc pushenv {k v} { out pushenv $k $v }', 'proc setenv {k v} { out setenv $k $v }')


# A prefix with every troublesome character in its name: the modulefile carries it in PATH,
# ALPHAFOLD_SITE_CONFIG and the runtime's variable (no site setting: the runtime reads those itself).
NASTY = "it's \"q\" $HOME [x] {y} \\b %s @{version} \u00fc"


@pytest.mark.parametrize('flavour', ['lua', 'tcl', 'tcl4'])
def test_rendered_modulefile_does_exactly_what_the_spec_says(flavour, tmp_path):
    vdir = str(tmp_path / ("prefix $x 'y' " + NASTY) / __version__)
    s = modulefile.spec(__version__, 'cuda12', vdir, {'ALPHAFOLD_ENV': vdir + '/envs/venv-1'})
    module = tmp_path / 'module'
    module.write_text(getattr(modulefile, flavour[:3])(s), encoding='utf-8')
    if flavour == 'lua':
        cmd, standins = [interpreter('lua5.4', 'lua5.3', 'lua', 'texlua')], LUA_STANDINS
    else:
        cmd, standins = [interpreter('tclsh'), '-encoding', 'utf-8'], TCL_STANDINS if flavour == 'tcl' else TCL4_STANDINS
    out, err = read_back(cmd, tmp_path, standins, str(module))
    out = [tuple(record.split(SEP)) for record in out.split(END)[:-1]]
    assert out[0] == ('whatis', s['whatis'])
    if flavour == 'lua':
        assert out.pop(1) == ('help', s['help'] + '\n')      # a long bracket keeps the last newline
    else:
        assert err == s['help'] + '\n'
    setter = 'setenv' if flavour == 'tcl4' else 'pushenv'
    assert out[1:] == [('conflict', 'alphafold')] + [(setter, k, v) for k, v in s['environment']] + [
        ('prepend_path', 'PATH', vdir + '/bin')]                           # no ALPHAFOLD_DATA_DIR: jobs choose
    # No copies of site settings ([data], [memory], [cache]): the runtime reads the site config
    assert {r[1] for r in out if r[0] == setter} == {'ALPHAFOLD_KIT_VERSION', 'ALPHAFOLD_KIT_VARIANT',
                                                     'ALPHAFOLD_SITE_CONFIG', 'ALPHAFOLD_ENV'}


TEMPLATES = sorted(glob.glob(os.path.join(ROOT, 'modulefiles', '*.in')) +
                   glob.glob(os.path.join(ROOT, 'recipes', 'templates', '*.in')))


def test_every_at_brace_in_the_templates_is_a_placeholder():
    assert len(TEMPLATES) == 5
    for path in TEMPLATES:
        with open(path, encoding='utf-8') as f:
            text = f.read()
        assert text.count('@{') == len(Template.pattern.findall(text)), path


def test_rendered_files_have_no_placeholder_left_and_keep_each_languages_own_syntax():
    s = modulefile.spec(__version__, 'cuda12', '/opt/af/0.1.0', {'ALPHAFOLD_IMAGE': '/opt/af/a.sif'})
    lua, tcl = modulefile.lua(s), modulefile.tcl(s)
    row = recipes.variants()['cuda12']
    definition, conda = recipes.apptainer_def('cuda12', row, {'jax': '0.4.26'}), recipes.conda_yml('cuda12', row)
    for text in (lua, tcl, definition, conda, s['help']):
        assert '@{' not in text
    assert 'pushenv("ALPHAFOLD_KIT_VARIANT", "cuda12")' in lua
    assert 'af_env ALPHAFOLD_KIT_VARIANT "cuda12"' in tcl and 'proc af_env {name value} { setenv $name $value }' in tcl
    assert 'exec /opt/conda/bin/python -m fold_runtime "$@"' in definition
    assert 'export PATH=/opt/conda/bin:$PATH' in definition and 'org.alphafold-hpc-kit.jax 0.4.26' in definition
    assert '  - openmm=8.0.0' in conda
    assert 'ALPHAFOLD_DATA_DIR overrides' in s['help'] and 'module load alphafold/0.1.0-cuda12' in s['help']
    assert modulefile.version_file('0.1.0-cuda12') == '#%Module1.0\nset ModulesVersion "0.1.0-cuda12"\n'
