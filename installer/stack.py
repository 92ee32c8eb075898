"""python -m installer finish-stack: the pip half of every route (image %post, conda, venv).

In an environment that has the variant's Python (and, for the image and conda, its conda
packages): the lock with --no-deps, AlphaFold at the variant's revision with --no-deps, the
stereo-chemistry file its Dockerfile downloads, OpenMM's patch where the revision ships one, and
the kit. Runs with the environment's own Python (3.8 in the legacy images).
"""
import logging
import os
import subprocess
import tempfile
import urllib.request

from installer import ROOT, locks
from kit_common import tools
from kit_common.errors import KitError
from kit_common.files import write_bytes

logger = logging.getLogger(__name__)

ALPHAFOLD_GIT = 'https://github.com/google-deepmind/alphafold.git'
# The revision every AlphaFold Dockerfile downloads it at.
STEREO_URL = ('https://git.scicore.unibas.ch/schwede/openstructure/-/raw/7102c63615b64735c4941278d92b554ec94415f8'
              '/modules/mol/alg/src/stereo_chemical_props.txt')
STEREO_FILE = 'stereo_chemical_props.txt'
# AlphaFold v2.0.x opens the file relative to the working directory (fixed upstream in v2.1).
RELATIVE_STEREO = "'alphafold/common/stereo_chemical_props.txt'"
ANCHORED_STEREO = "os.path.join(os.path.dirname(os.path.abspath(__file__)), 'stereo_chemical_props.txt')"
FIX = 'fix the cause above and rerun make install; nothing was switched in'


def finish(python, variant, row, alphafold_source=None, extra=()):
    """python: the environment's interpreter; alphafold_source: a local checkout, or pip
    requirements (space-separated), instead of the row's git revision (sites without GitHub, and
    the tests); extra: pip pins for what conda gives the other routes (venv_extra)."""
    pip = [python, '-m', 'pip', 'install', '--no-deps', '--quiet']
    step(pip + ['-r', locks.path(variant)], 'installing %s' % os.path.basename(locks.path(variant)))
    if extra:
        step(pip + list(extra), 'installing %s' % ' '.join(extra))
    with tempfile.TemporaryDirectory() as tmp:
        source = alphafold_source or clone(row['alphafold'], os.path.join(tmp, 'alphafold'))
        checkout = os.path.isdir(source)
        step(pip + ([source] if checkout else source.split()),
             'installing AlphaFold (%s)' % (alphafold_source or row['alphafold_source']))
        package = package_dir(python)
        fetch_stereo(package)
        anchor_stereo_path(package)
        if checkout:
            apply_openmm_patch(source, python)
    step(pip + [ROOT], 'installing the kit')


def step(cmd, what):
    logger.info('%s', what)
    tools.run(cmd, what, FIX, stdout=None)


def clone(ref, into):
    step(['git', 'clone', '--quiet', ALPHAFOLD_GIT, into], 'cloning AlphaFold')
    step(['git', '-C', into, 'checkout', '--quiet', ref], 'checking out AlphaFold %s' % ref)
    return into


def package_dir(python):
    """The installed alphafold package's directory, found without importing it (importing
    alphafold.common would already need the stereo-chemistry file)."""
    return ask(python, 'import importlib.util; print(importlib.util.find_spec("alphafold").submodule_search_locations[0])')


def ask(python, code):
    """What code prints in the environment's interpreter (its paths, not the installer's)."""
    return subprocess.run([python, '-c', code], check=True, stdout=subprocess.PIPE,
                          universal_newlines=True).stdout.strip()


def fetch_stereo(package):
    target = os.path.join(package, 'common', STEREO_FILE)
    if os.path.exists(target):   # some distributions ship it
        return
    logger.info('downloading %s', STEREO_URL)
    try:
        with urllib.request.urlopen(STEREO_URL, timeout=120) as response:
            data = response.read()
    except OSError as e:
        raise KitError('could not download %s: %s' % (STEREO_URL, e), FIX)
    check_stereo(data)
    write_bytes(target, data)


def check_stereo(data):
    """The file AlphaFold parses: bond, angle and clash tables (an error page is none of them)."""
    text = data.decode('utf-8', 'replace')
    if not all(h in text for h in ('Bond', 'Angle', 'Non-bonded distance')):
        raise KitError('%s is not the stereo-chemistry table (%d bytes)' % (STEREO_URL, len(data)), FIX)


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
    site = ask(python, 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    with open(patch, 'rb') as f:
        tools.run(['patch', '-p0', '--forward', '-d', site], 'applying %s' % patch, FIX, input=f.read().decode())
    return True

