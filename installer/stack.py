"""python -m installer finish-stack: the pip half of every route (image %post, conda, venv).

In an environment that has the variant's Python (and, for the image and conda, its conda
packages): the lock with --no-deps, AlphaFold at the variant's revision with --no-deps, the
stereo-chemistry file its Dockerfile downloads, OpenMM's patch where the revision ships one, and
the kit. Runs with the environment's own Python (3.8 in the legacy images).
"""
import logging
import os
import shutil
import subprocess
import tempfile

from installer import ROOT, locks, sources
from kit_common import tools
from kit_common.errors import KitError
from kit_common.files import write_bytes

logger = logging.getLogger(__name__)

# AlphaFold v2.0.x opens the file relative to the working directory (fixed upstream in v2.1).
RELATIVE_STEREO = "'alphafold/common/stereo_chemical_props.txt'"
ANCHORED_STEREO = "os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stereo_chemical_props.txt')"
FIX = 'fix the cause above and rerun make install; nothing was switched in'


def finish(python, variant, row, alphafold_source=None, extra=(), editable=False, lock=None):
    """python: the environment's interpreter; alphafold_source: ALPHAFOLD_SOURCE (installer.sources);
    extra: pip pins for what conda gives the other routes (venv_extra); editable: the kit as
    `pip install -e` (make deps); lock: another lock file than the variant's (the tests' CPU
    equivalent of a CUDA lock)."""
    pip = [python, '-m', 'pip', 'install', '--no-deps', '--quiet']
    lock = lock or locks.path(variant)
    step(pip + ['-r', lock], 'installing %s' % os.path.basename(lock))
    if extra:
        step(pip + list(extra), 'installing %s' % ' '.join(extra))
    with tempfile.TemporaryDirectory() as tmp:
        checkout = install_alphafold(python, pip, row, alphafold_source, tmp)
        if checkout:
            apply_openmm_patch(checkout, python)
    package = package_dir(python)
    place_stereo(package)
    anchor_stereo_path(package)
    step(pip + (['-e', ROOT] if editable else [ROOT]), 'installing the kit')


def install_alphafold(python, pip, row, source, tmp):
    """AlphaFold from source (installer.sources), as a package `import alphafold` finds; returns
    the checkout it came from (None for pip requirements)."""
    how = sources.kind(source)
    if how == 'pip':
        step(pip + source.split(), 'installing AlphaFold as %s (not DeepMind\'s repository)' % source)
        return None
    if how == 'git':
        checkout = clone(row['alphafold'], os.path.join(tmp, 'alphafold'))
    elif how == 'checkout':
        checkout = source
    else:
        archive = sources.archive_for(source, row['alphafold'])
        logger.info('AlphaFold %s from %s (sha256 verified)', row['alphafold'], archive)
        checkout = sources.unpack(archive, os.path.join(tmp, 'archive'))
    step(pip + [checkout], 'installing AlphaFold (%s)' % row['alphafold_source'])
    if not ask(python, 'import importlib.metadata as m; '
                       'print(any(str(f) == "alphafold/__init__.py" for f in m.distribution("alphafold").files or []))') == 'True':
        copy_package(python, checkout)
    return checkout


def copy_package(python, checkout):
    """From a4315dd on, DeepMind's pyproject.toml installs only run_alphafold.py (py-modules), so
    the checkout's alphafold/ package is copied beside it, as a wheel with package discovery would."""
    target = os.path.join(purelib(python), 'alphafold')
    logger.info('AlphaFold\'s build installs no alphafold package: copying %s/alphafold to %s', checkout, target)
    shutil.rmtree(target, ignore_errors=True)   # an earlier copy, in an environment built again
    shutil.copytree(os.path.join(checkout, 'alphafold'), target, ignore=shutil.ignore_patterns('__pycache__'))
    if not package_dir(python):
        raise KitError('import alphafold does not resolve in %s after installing it' % python, FIX)


def step(cmd, what):
    logger.info('%s', what)
    tools.run(cmd, what, FIX, stdout=None)


def clone(ref, into):
    step(['git', 'clone', '--quiet', sources.ALPHAFOLD_GIT, into], 'cloning AlphaFold')
    step(['git', '-C', into, 'checkout', '--quiet', ref], 'checking out AlphaFold %s' % ref)
    return into


def package_dir(python):
    """The installed alphafold package's directory ('' when there is none), found without
    importing it (importing alphafold.common would already need the stereo-chemistry file)."""
    return ask(python, 'import importlib.util; s = importlib.util.find_spec("alphafold"); '
                       'print(s.submodule_search_locations[0] if s and s.submodule_search_locations else "")')


def purelib(python):
    return ask(python, 'import sysconfig; print(sysconfig.get_paths()["purelib"])')


def ask(python, code):
    """What code prints in the environment's interpreter (its paths, not the installer's)."""
    return subprocess.run([python, '-c', code], check=True, stdout=subprocess.PIPE,
                          universal_newlines=True).stdout.strip()


def place_stereo(package):
    """The stereo-chemistry table in alphafold/common/: one a distribution ships is kept when its
    sha256 is OpenStructure's; otherwise it comes from STEREO_SOURCE (sources.stereo_bytes)."""
    target = os.path.join(package, 'common', sources.STEREO_FILE)
    if os.path.exists(target):
        with open(target, 'rb') as f:
            sources.check_stereo(f.read(), target)
        return
    write_bytes(target, sources.stereo_bytes())


def anchor_stereo_path(package):
    """v2.0.x reads the table from ./alphafold/common/, so it worked only in /app/alphafold:
    anchor it to the module's directory, as v2.1 does."""
    module = os.path.join(package, 'common', 'residue_constants.py')
    with open(module, encoding='utf-8') as f:
        text = f.read()
    if RELATIVE_STEREO not in text:
        return False
    text = text.replace(RELATIVE_STEREO, ANCHORED_STEREO)
    if '\nimport os\n' not in text:
        text = text.replace('\nimport collections\n', '\nimport collections\nimport os\n', 1)
    write_bytes(module, text.encode('utf-8'))
    logger.info('anchored the stereo-chemistry path in %s', module)
    return True


def apply_openmm_patch(source, python):
    """docker/openmm.patch, where the revision has one, applied in site-packages as its
    Dockerfile does (OpenMM 7.5.1; revisions on OpenMM 8 have none)."""
    patch = os.path.join(source, 'docker', 'openmm.patch')
    if not os.path.exists(patch):
        return False
    site = purelib(python)
    with open(patch, 'rb') as f:
        tools.run(['patch', '-p0', '--forward', '-d', site], 'applying %s' % patch, FIX, input=f.read().decode())
    return True

