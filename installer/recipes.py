"""Apptainer definitions and conda environment files, generated from recipes/variants.ini.

The table is the single source of truth: `python -m installer recipes` rewrites
recipes/<variant>.def and recipes/<variant>.conda.yml, and a test checks they are in sync.
The definition builds its environment from the variant's conda file, so both routes (image and
conda) install the same pinned stack.
"""
import configparser
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = os.path.join(ROOT, 'recipes')
JAX_WHEELS = {'legacy': 'https://storage.googleapis.com/jax-releases/jax_releases.html',
              'current': 'https://storage.googleapis.com/jax-releases/jax_cuda_releases.html'}
PIN_KEYS = ('python', 'cuda', 'cudnn', 'jax', 'jaxlib', 'tensorflow', 'alphafold', 'openmm',
            'hmmer', 'hhsuite', 'kalign')


def variants(path=os.path.join(RECIPES, 'variants.ini')):
    parser = configparser.ConfigParser()
    with open(path) as f:
        parser.read_file(f)
    return {name: dict(parser[name]) for name in parser.sections()}


def _major_minor(version):
    return '.'.join(version.split('.')[:2])


def conda_yml(name, row):
    legacy = int(row['cuda'].split('.')[0]) < 12
    cuda = ('cudatoolkit=%s' if legacy else 'cuda-version=%s') % _major_minor(row['cuda'])
    return '\n'.join([
        '# Generated from recipes/variants.ini [%s] by `python -m installer recipes`; do not edit.' % name,
        'name: alphafold-%s' % name,
        'channels:',
        '  - conda-forge',
        '  - bioconda',
        'dependencies:',
        '  - python=%s' % row['python'],
        '  - %s' % cuda,
        '  - cudnn=%s' % row['cudnn'],
        '  - hmmer=%s' % row['hmmer'],
        '  - hhsuite=%s' % row['hhsuite'],
        '  - kalign3=%s' % row['kalign'],
        '  - openmm=%s' % row['openmm'],
        '  - pdbfixer',
        # the kit's own needs: downloads, progress bars, batch reports
        '  - requests',
        '  - tqdm',
        '  - matplotlib-base',
        '  - pip',
        '  - pip:',
        '    - --find-links %s' % JAX_WHEELS['legacy' if legacy else 'current'],
        '    - jax==%s' % row['jax'],
        '    - jaxlib==%s' % row['jaxlib'],
        '    - tensorflow-cpu==%s' % row['tensorflow'],
        '    - git+https://github.com/google-deepmind/alphafold.git@%s' % row['alphafold'],
        '',
    ])


def apptainer_def(name, row):
    site_packages = '/opt/conda/lib/python%s/site-packages' % row['python']
    labels = ''.join('    org.alphafold-hpc-kit.%s %s\n' % (k, row[k]) for k in PIN_KEYS)
    return '''# Generated from recipes/variants.ini [{name}] by `python -m installer recipes`; do not edit.
Bootstrap: docker
From: {base}

%labels
    org.alphafold-hpc-kit.variant {name}
{labels}
%files
    . /opt/alphafold-hpc-kit

%post
    set -eu
    apt-get update
    apt-get install -y --no-install-recommends ca-certificates wget bzip2 git
    wget -qO- https://micro.mamba.pm/api/micromamba/linux-64/latest | tar -xj -C /usr/local bin/micromamba
    /usr/local/bin/micromamba create -y -p /opt/conda -f /opt/alphafold-hpc-kit/recipes/{name}.conda.yml
    /opt/conda/bin/pip install --no-cache-dir --no-deps /opt/alphafold-hpc-kit
    wget -q -O {site}/alphafold/common/stereo_chemical_props.txt https://git.scicore.unibas.ch/schwede/openstructure/-/raw/7.1.0/modules/mol/alg/src/stereo_chemical_props.txt
    /usr/local/bin/micromamba clean -a -y

%environment
    export PATH=/opt/conda/bin:$PATH
    export ALPHAFOLD_KIT_VARIANT={name}

%runscript
    exec /opt/conda/bin/python -m fold_runtime "$@"

%test
    jackhmmer -h >/dev/null
    hhblits -h >/dev/null
    kalign -h >/dev/null
    /opt/conda/bin/python -c "import alphafold, fold_runtime, data_sync"
'''.format(name=name, base=row['base_image'], labels=labels, site=site_packages)


def generate(out_dir=RECIPES):
    written = []
    for name, row in variants().items():
        for suffix, text in (('.def', apptainer_def(name, row)), ('.conda.yml', conda_yml(name, row))):
            path = os.path.join(out_dir, name + suffix)
            with open(path, 'w') as f:
                f.write(text)
            written.append(path)
    return written
