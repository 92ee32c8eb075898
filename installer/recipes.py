"""Apptainer definitions and conda environment files, rendered from recipes/variants.ini and
each variant's lock (installer/locks.py).

The table is the single source of truth: `python -m installer recipes` fills
recipes/templates/apptainer.def.in and conda.yml.in for each row and writes
recipes/<variant>.def and recipes/<variant>.conda.yml; a test checks they are in sync.
The conda file holds what comes from conda (Python, CUDA libraries, OpenMM, the search tools);
everything from pip is in the lock, which `installer finish-stack` installs in every route.
"""
import configparser
import os

from installer import ROOT
from installer.template import render
from kit_common.errors import KitError
from kit_common.files import write_text

RECIPES = os.path.join(ROOT, 'recipes')
TEMPLATES = os.path.join(RECIPES, 'templates')
ROW_KEYS = ('base_image', 'platform', 'python', 'cuda', 'cudnn', 'conda_cuda', 'ptxas', 'alphafold', 'alphafold_source',
            'openmm', 'pdbfixer', 'hmmer', 'hhsuite', 'kalign', 'mmseqs2', 'jax_index', 'other_index',
            'resolved_as_of', 'requirements', 'venv_extra')
# Labels of the image: the row's pins, then the lock's for these packages.
LABEL_KEYS = ('python', 'cuda', 'cudnn', 'alphafold', 'openmm', 'pdbfixer', 'hmmer', 'hhsuite', 'kalign', 'mmseqs2')
LOCKED_LABELS = ('jax', 'jaxlib', 'tensorflow-cpu', 'dm-haiku', 'numpy')   # from the lock
# The kit's own source: all that %files copies (not .git, .venv or test data).
KIT_SOURCE = ('kit_common', 'fold_runtime', 'data_sync', 'installer', 'recipes', 'pyproject.toml')
# Where ptxas goes: XLA compiles its GPU kernels with it.
NVIDIA_APT = 'https://developer.download.nvidia.com/compute/cuda/repos/%s/x86_64/cuda-keyring_1.0-1_all.deb'


def variants(path=os.path.join(RECIPES, 'variants.ini')):
    parser = configparser.ConfigParser(interpolation=None)
    with open(path, encoding='utf-8') as f:
        parser.read_file(f)
    rows = {name: dict(parser[name]) for name in parser.sections()}
    for name, row in rows.items():
        missing = [key for key in ROW_KEYS if key not in row]
        if missing:
            raise KitError('%s [%s] lacks %s' % (path, name, ', '.join(missing)),
                           'give every variant all of: %s' % ', '.join(ROW_KEYS))
    return rows


def conda_packages(row):
    """The conda file's dependencies, every one pinned."""
    listed = ['python=' + row['python']]
    listed += row['conda_cuda'].split()
    if row['cudnn']:
        listed.append('cudnn=' + row['cudnn'])
    listed += ['%s=%s' % (key, row[key]) for key in ('openmm', 'pdbfixer') if row[key]]   # else in the lock
    listed += ['hmmer=' + row['hmmer'], 'hhsuite=' + row['hhsuite'], 'kalign2=' + row['kalign']]
    if row['mmseqs2']:   # else the host's MMseqs2
        listed.append('mmseqs2=' + row['mmseqs2'])
    return listed


def conda_yml(name, row):
    return render(os.path.join(TEMPLATES, 'conda.yml.in'), dict(
        name=name, dependencies='\n'.join('  - ' + p for p in conda_packages(row))))


def ptxas_steps(row):
    """(%post lines, PATH entry) that give the image XLA's ptxas."""
    how = row['ptxas'].split(':')
    if how[0] == 'apt':        # apt:<ubuntu release>:<package>, from NVIDIA's repository
        release, package = how[1], how[2]
        version = package.rsplit('-', 2)[-2:]
        lines = ['wget -q -O /tmp/cuda-keyring.deb ' + NVIDIA_APT % release,
                 'dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb',
                 'apt-get update',
                 'apt-get install -y --no-install-recommends ' + package]
        return lines, '/usr/local/cuda-%s/bin:' % '.'.join(version)
    return [], ''              # pip: the nvidia-cuda-nvcc wheel (jax finds it); none: CPU only


def apptainer_def(name, row, locked):
    """locked: {package: version} of the variant's lock, for the labels."""
    labels = ['    org.alphafold-hpc-kit.%s %s' % (key, row[key] or locked.get(key, 'none')) for key in LABEL_KEYS]
    labels += ['    org.alphafold-hpc-kit.%s %s' % (key, locked[key]) for key in LOCKED_LABELS if key in locked]
    steps, ptxas_path = ptxas_steps(row)
    return render(os.path.join(TEMPLATES, 'apptainer.def.in'), dict(
        row, name=name, labels='\n'.join(labels), ptxas='\n'.join('    ' + s for s in steps) or '    true',
        ptxas_path=ptxas_path,
        files='\n'.join('    %s /opt/alphafold-hpc-kit/%s' % (p, p) for p in KIT_SOURCE)))


def generate(out_dir=RECIPES):
    """Write both files of every variant into out_dir; returns their paths."""
    from installer import locks
    written = []
    for name, row in variants().items():
        locked = {locks.normalise(n): v for n, v, _ in locks.pins(name)}
        for suffix, text in (('.def', apptainer_def(name, row, locked)), ('.conda.yml', conda_yml(name, row))):
            path = os.path.join(out_dir, name + suffix)
            write_text(path, text)
            written.append(path)
    return written
