"""The install methods, one class each: what `make install METHOD=<name>` builds, the module
variable that names the result, and how check-install runs a command inside it.

Every build goes into a new directory (installer/builds.py); install.py switches to it only
after the build succeeded, so a failed build leaves the installed version usable.
"""
import logging
import os
import shutil
import sys

from installer import ROOT, locks, stack
from installer.recipes import RECIPES
from kit_common import tools
from kit_common.errors import EXIT_MISSING, KitError
from kit_common.files import make_dirs

logger = logging.getLogger(__name__)

RERUN = 'rerun make install once the cause is fixed; the installed version, if any, is unchanged'
# The kit's own packages, copied beside an image for alphafold-batch's host side (wrapper.sh).
KIT_PACKAGES = ('kit_common', 'fold_runtime', 'data_sync')


def run_step(cmd, what, **kwargs):
    """Run one build step. Its stdout streams to the terminal, so a build of many minutes shows
    its progress; its stderr is kept for the error message when it fails."""
    logger.info('+ %s', ' '.join(cmd))
    tools.run(cmd, what, RERUN, stdout=None, **kwargs)


class Method:
    name = ''
    runtime_var = ''   # the module variable set to the image or environment
    folder = 'envs'    # where under PREFIX/<version>/<variant>/ its builds go
    # Characters that must not appear in the install's paths: ':' splits PATH.
    separators = ':'

    def tool(self):
        """The build tool; a KitError when it is missing (checked before anything is written)."""
        return sys.executable

    def runtime(self, build, variant):
        """The image or environment that a build directory holds."""
        return build

    def check(self, variant, row, alphafold_source):
        """A KitError when this method cannot build variant (checked before anything is written)."""

    def build(self, build, variant, row, alphafold_source=None):
        """Build the runtime for variant (its variants.ini row) into the directory build;
        alphafold_source: a checkout or pip requirement instead of the row's git revision."""
        raise NotImplementedError

    def paths_to_check(self, vardir, site):
        """The paths whose separators would break the install, with what they are."""
        return [('PREFIX/<version>/<variant>', vardir)]

    def command(self, runtime, argv, gpu=False):
        """argv as run inside the runtime (gpu: with the host's GPUs visible)."""
        return list(argv)

    def python(self, runtime, code, gpu=False):
        """The command that runs Python code inside the runtime."""
        return self.command(runtime, [self.interpreter(runtime), '-c', code], gpu)

    def interpreter(self, runtime):
        return os.path.join(runtime, 'bin', 'python')

    def prepend(self, runtime):
        """[(variable, directory)] that the wrapper (wrapper.sh) puts first before it runs the kit
        in this runtime; tests/fast/test_install_methods.py checks that the wrapper does the same."""
        return []

    def environment(self, runtime, environ=None):
        """The environment the wrapper gives the kit in this runtime, which check-install runs the
        runtime's commands in too: environ (default os.environ) with prepend()'s directories first."""
        env = dict(os.environ if environ is None else environ)
        for var, directory in self.prepend(runtime):
            env[var] = directory + (os.pathsep + env[var] if env.get(var) else '')   # bash's ${VAR:+:$VAR}
        return env


class Apptainer(Method):
    """Each build is a directory holding the image alphafold-<variant>.sif and lib/, the kit's
    own source, with which the wrapper runs alphafold-batch's Slurm side on the host."""
    name = 'apptainer'
    runtime_var = 'ALPHAFOLD_IMAGE'
    folder = 'images'
    separators = ':,'   # Apptainer's --bind splits at both

    def tool(self):
        path = shutil.which('apptainer')
        if not path:
            raise KitError('apptainer not found on PATH (METHOD=apptainer builds an image)',
                           'install Apptainer or load its module, or use METHOD=conda or METHOD=venv', EXIT_MISSING)
        return path

    def runtime(self, build, variant):
        return os.path.join(build, 'alphafold-%s.sif' % variant)

    def check(self, variant, row, alphafold_source):
        if alphafold_source:
            raise KitError('ALPHAFOLD_SOURCE applies to METHOD=conda and venv; an image clones AlphaFold %s itself'
                           % row['alphafold'], 'leave ALPHAFOLD_SOURCE unset with METHOD=apptainer')

    def build(self, build, variant, row, alphafold_source=None):
        make_dirs(build)
        image = self.runtime(build, variant)
        tmp = image + '.building'
        fakeroot = [] if os.geteuid() == 0 else ['--fakeroot']   # users without root build unprivileged
        # cwd: the definition's %files copies the kit's source from the checkout into the image.
        run_step(['apptainer', 'build'] + fakeroot + ['--force', tmp, os.path.join(RECIPES, variant + '.def')],
                 'apptainer build', cwd=ROOT)
        os.replace(tmp, image)
        for package in KIT_PACKAGES:
            shutil.copytree(os.path.join(ROOT, package), os.path.join(build, 'lib', package),
                            ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))

    def paths_to_check(self, vardir, site):
        # The wrapper binds the site config's directories into the image too.
        return super().paths_to_check(vardir, site) + [
            ('[data] shared_root', site.data.shared_root), ('[data] local_root', site.data.local_root),
            ('[cache] feature_cache', site.cache.feature_cache), ('[cache] jax_cache', site.cache.jax_cache)]

    def command(self, runtime, argv, gpu=False):
        return ['apptainer', 'exec'] + (['--nv'] if gpu else []) + [runtime] + list(argv)

    def interpreter(self, runtime):
        return 'python'   # the image's PATH has its conda environment first


class Conda(Method):
    """A conda (or mamba) environment from recipes/<variant>.conda.yml, plus the kit."""
    name = 'conda'
    runtime_var = 'ALPHAFOLD_ENV'

    def tool(self):
        path = shutil.which('mamba') or shutil.which('conda')
        if not path:
            raise KitError('neither mamba nor conda found on PATH (METHOD=conda)',
                           'load a conda/mamba module, or use METHOD=venv or METHOD=apptainer', EXIT_MISSING)
        return path

    def check(self, variant, row, alphafold_source):
        # The host's: finish-stack clones AlphaFold and applies its OpenMM patch.
        for tool in ([] if alphafold_source else ['git']) + ['patch']:
            if not shutil.which(tool):
                raise KitError('%s not found on PATH (METHOD=conda installs AlphaFold with it)' % tool,
                               'install %s or load its module' % tool, EXIT_MISSING)

    def create_command(self, build, variant):
        """`env create` into the new directory build. No -y/--yes: conda's `env create` has it only
        since 23.x and older condas refuse it; it asks nothing for a new prefix, and create_env's
        always_yes settings answer for a mamba that would ask."""
        return [self.tool(), 'env', 'create', '-p', build, '-f', os.path.join(RECIPES, variant + '.conda.yml')]

    def create_env(self):
        return dict(os.environ, CONDA_ALWAYS_YES='true', MAMBA_ALWAYS_YES='true')

    def build(self, build, variant, row, alphafold_source=None):
        run_step(self.create_command(build, variant), 'creating the conda environment', env=self.create_env())
        stack.finish(self.interpreter(build), variant, row, alphafold_source)

    def prepend(self, runtime):
        # Its own jackhmmer, hhblits and kalign2 (bioconda), and conda's CUDA libraries.
        return [('PATH', os.path.join(runtime, 'bin')), ('LD_LIBRARY_PATH', os.path.join(runtime, 'lib'))]


class Venv(Method):
    """A virtualenv of the installer's Python with the variant's lock and its venv_extra pins
    (OpenMM and kalign from PyPI); jackhmmer and HH-suite come from the host (CPU-only sites,
    and the tests)."""
    name = 'venv'
    runtime_var = 'ALPHAFOLD_ENV'

    def check(self, variant, row, alphafold_source):
        if row['openmm']:
            raise KitError('VARIANT=%s cannot be a venv: its OpenMM %s is on conda-forge, not PyPI' % (variant, row['openmm']),
                           'use METHOD=conda or METHOD=apptainer for it, or a variant with OpenMM in its lock '
                           '(cuda12-pip, cpu)')
        have = '%d.%d' % sys.version_info[:2]
        if have != row['python']:
            raise KitError('VARIANT=%s is locked for Python %s; the installer runs Python %s' % (variant, row['python'], have),
                           'run make install with INSTALL_PY=python%s' % row['python'])

    def build(self, build, variant, row, alphafold_source=None):
        run_step([self.tool(), '-m', 'venv', build], 'creating the virtualenv')
        stack.finish(self.interpreter(build), variant, row, alphafold_source, locks.top_level(row, 'venv_extra'))

    def prepend(self, runtime):
        return [('PATH', os.path.join(runtime, 'bin'))]


METHODS = {method.name: method for method in (Apptainer(), Conda(), Venv())}


def get(name):
    if name not in METHODS:
        raise KitError('unknown METHOD %r' % name, 'choose one of %s' % ', '.join(METHODS))
    return METHODS[name]
