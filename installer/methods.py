"""The install methods, one class each: what `make install METHOD=<name>` builds, the module
variable that names the result, and how check-install runs a command inside it.

Every build goes into a new image file or environment directory; install.py switches to it only
after the build succeeded, so a failed build leaves the installed version usable.
"""
import logging
import os
import shutil
import sys
import time

from installer import ROOT
from installer.recipes import RECIPES
from kit_common import tools
from kit_common.errors import EXIT_MISSING, KitError
from kit_common.files import make_dirs

logger = logging.getLogger(__name__)

RERUN = 'rerun make install once the cause is fixed; the installed version, if any, is unchanged'


def run_step(cmd, what, **kwargs):
    """Run one build step. Its stdout streams to the terminal, so a build of many minutes shows
    its progress; its stderr is kept for the error message when it fails."""
    logger.info('+ %s', ' '.join(cmd))
    tools.run(cmd, what, RERUN, stdout=None, **kwargs)


class Method:
    name = ''
    runtime_var = ''   # the module variable set to the image or environment

    def build(self, vdir, variant):
        """Build the runtime for variant under vdir; returns its path."""
        raise NotImplementedError

    def command(self, runtime, argv, gpu=False):
        """argv as run inside the runtime (gpu: with the host's GPUs visible)."""
        return list(argv)

    def python(self, runtime, code, gpu=False):
        """The command that runs Python code inside the runtime."""
        return self.command(runtime, [self.interpreter(runtime), '-c', code], gpu)

    def interpreter(self, runtime):
        return os.path.join(runtime, 'bin', 'python')

    def tool_path(self, runtime):
        """PATH under which the search tools are found for this runtime."""
        return os.environ.get('PATH', '')


class Apptainer(Method):
    """One image per variant at images/alphafold-<variant>.sif, replaced only by a finished build."""
    name = 'apptainer'
    runtime_var = 'ALPHAFOLD_IMAGE'

    def build(self, vdir, variant):
        if not shutil.which('apptainer'):
            raise KitError('apptainer not found on PATH (METHOD=apptainer builds an image)',
                           'install Apptainer or load its module, or use METHOD=conda or METHOD=venv', EXIT_MISSING)
        images = os.path.join(vdir, 'images')
        make_dirs(images)
        image = os.path.join(images, 'alphafold-%s.sif' % variant)
        tmp = image + '.building'
        fakeroot = [] if os.geteuid() == 0 else ['--fakeroot']   # users without root build unprivileged
        # cwd: the definition's %files copies the kit's checkout (".") into the image.
        run_step(['apptainer', 'build'] + fakeroot + ['--force', tmp, os.path.join(RECIPES, variant + '.def')],
                 'apptainer build', cwd=ROOT)
        os.replace(tmp, image)
        return image

    def command(self, runtime, argv, gpu=False):
        return ['apptainer', 'exec'] + (['--nv'] if gpu else []) + [runtime] + list(argv)

    def interpreter(self, runtime):
        return 'python'   # the image's PATH has its conda environment first


class Conda(Method):
    """A conda (or mamba) environment from recipes/<variant>.conda.yml, plus the kit."""
    name = 'conda'
    runtime_var = 'ALPHAFOLD_ENV'

    def build(self, vdir, variant):
        tool = shutil.which('mamba') or shutil.which('conda')
        if not tool:
            raise KitError('neither mamba nor conda found on PATH (METHOD=conda)',
                           'load a conda/mamba module, or use METHOD=venv or METHOD=apptainer', EXIT_MISSING)
        env = new_env_dir(vdir, variant)
        run_step([tool, 'env', 'create', '-y', '-p', env, '-f', os.path.join(RECIPES, variant + '.conda.yml')],
                 'creating the conda environment')
        run_step([self.interpreter(env), '-m', 'pip', 'install', '-q', '--no-deps', ROOT], 'installing the kit')
        return env

    def tool_path(self, runtime):
        # The environment brings its own jackhmmer, hhblits and kalign (bioconda).
        return os.path.join(runtime, 'bin') + os.pathsep + os.environ.get('PATH', '')


class Venv(Method):
    """A virtualenv of the installer's Python with requirements.txt; the search tools come from
    the host (CPU-only sites, and the tests)."""
    name = 'venv'
    runtime_var = 'ALPHAFOLD_ENV'

    def build(self, vdir, variant):
        env = new_env_dir(vdir, 'venv')
        run_step([sys.executable, '-m', 'venv', env], 'creating the virtualenv')
        pip = [self.interpreter(env), '-m', 'pip', 'install', '-q']
        run_step(pip + ['-r', os.path.join(ROOT, 'requirements.txt')], 'installing requirements.txt')
        run_step(pip + ['--no-deps', ROOT], 'installing the kit')
        return env


def new_env_dir(vdir, name):
    """A fresh directory per build: the running install keeps its own until the switch."""
    envs = os.path.join(vdir, 'envs')
    make_dirs(envs)
    return os.path.join(envs, '%s-%s' % (name, time.strftime('%Y%m%d%H%M%S')))


METHODS = {method.name: method for method in (Apptainer(), Conda(), Venv())}


def get(name):
    if name not in METHODS:
        raise KitError('unknown METHOD %r' % name, 'choose one of %s' % ', '.join(METHODS))
    return METHODS[name]
