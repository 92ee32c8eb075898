"""Apptainer definitions and conda environment files, rendered from recipes/variants.ini.

The table is the single source of truth: `python -m installer recipes` fills
recipes/templates/apptainer.def.in and conda.yml.in for each row and writes
recipes/<variant>.def and recipes/<variant>.conda.yml; a test checks they are in sync.
The definition builds its environment from the variant's conda file, so both routes (image and
conda) install the same pinned stack.
"""
import configparser
import os

from installer import ROOT
from installer.template import render
from kit_common.errors import KitError
from kit_common.files import write_text

RECIPES = os.path.join(ROOT, 'recipes')
TEMPLATES = os.path.join(RECIPES, 'templates')
JAX_WHEELS = {'legacy': 'https://storage.googleapis.com/jax-releases/jax_releases.html',
              'current': 'https://storage.googleapis.com/jax-releases/jax_cuda_releases.html'}
PIN_KEYS = ('python', 'cuda', 'cudnn', 'jax', 'jaxlib', 'tensorflow', 'alphafold', 'openmm',
            'hmmer', 'hhsuite', 'kalign')
ROW_KEYS = ('base_image',) + PIN_KEYS


def variants(path=os.path.join(RECIPES, 'variants.ini')):
    parser = configparser.ConfigParser()
    with open(path, encoding='utf-8') as f:
        parser.read_file(f)
    rows = {name: dict(parser[name]) for name in parser.sections()}
    for name, row in rows.items():
        missing = [key for key in ROW_KEYS if key not in row]
        if missing:
            raise KitError('%s [%s] lacks %s' % (path, name, ', '.join(missing)),
                           'give every variant all of: %s' % ', '.join(ROW_KEYS))
    return rows


def _major_minor(version):
    return '.'.join(version.split('.')[:2])


def conda_yml(name, row):
    # CUDA 12 came with conda-forge's split CUDA packages; older ones are one cudatoolkit.
    legacy = int(row['cuda'].split('.')[0]) < 12
    cuda = ('cudatoolkit=%s' if legacy else 'cuda-version=%s') % _major_minor(row['cuda'])
    return render(os.path.join(TEMPLATES, 'conda.yml.in'),
                  dict(row, name=name, cuda_package=cuda, jax_wheels=JAX_WHEELS['legacy' if legacy else 'current']))


def apptainer_def(name, row):
    labels = '\n'.join('    org.alphafold-hpc-kit.%s %s' % (key, row[key]) for key in PIN_KEYS)
    return render(os.path.join(TEMPLATES, 'apptainer.def.in'),
                  dict(row, name=name, labels=labels,
                       site_packages='/opt/conda/lib/python%s/site-packages' % row['python']))


def generate(out_dir=RECIPES):
    """Write both files of every variant into out_dir; returns their paths."""
    written = []
    for name, row in variants().items():
        for suffix, text in (('.def', apptainer_def(name, row)), ('.conda.yml', conda_yml(name, row))):
            path = os.path.join(out_dir, name + suffix)
            write_text(path, text)
            written.append(path)
    return written
