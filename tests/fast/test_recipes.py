"""Recipes: checks of the generated Apptainer definitions and conda files (spython parses them;
Apptainer itself cannot run here)."""
import pytest
from spython.main.parse.parsers import SingularityParser

from installer import recipes
from kit_common.errors import KitError

ROWS = recipes.variants()


def test_generated_recipes_are_in_sync_with_the_table(tmp_path):
    for path in recipes.generate(str(tmp_path)):
        name = path.rsplit('/', 1)[1]
        with open(path) as new, open('%s/%s' % (recipes.RECIPES, name)) as committed:
            assert committed.read() == new.read(), '%s is stale: run make recipes' % name


def test_table_has_the_papers_legacy_rows_and_the_current_stack():
    assert ROWS['legacy-cuda10.1']['jaxlib'] == '0.1.69+cuda101'
    assert (ROWS['legacy-cuda10.1']['cuda'], ROWS['legacy-cuda10.1']['cudnn'], ROWS['legacy-cuda10.1']['tensorflow']) == ('10.1', '7.6', '2.3.0')
    assert (ROWS['legacy-cuda11.0']['cuda'], ROWS['legacy-cuda11.0']['cudnn'], ROWS['legacy-cuda11.0']['tensorflow'],
            ROWS['legacy-cuda11.0']['jaxlib']) == ('11.0.3', '8.0.4', '2.5.0', '0.1.69+cuda110')
    for legacy in ('legacy-cuda10.1', 'legacy-cuda11.0'):
        assert (ROWS[legacy]['python'], ROWS[legacy]['alphafold']) == ('3.8', 'v2.0.1')
    assert (ROWS['cuda12']['python'], ROWS['cuda12']['jax'], ROWS['cuda12']['alphafold']) == ('3.11', '0.4.26', 'v2.3.2')
    assert ROWS['cuda12']['openmm'].startswith('8.')


@pytest.mark.parametrize('variant', sorted(ROWS))
def test_definition_file_pins_exactly_its_row(variant):
    row = ROWS[variant]
    recipe = list(SingularityParser('%s/%s.def' % (recipes.RECIPES, variant)).recipe.values())[0]
    assert recipe.fromHeader == row['base_image']
    labels = dict(l.split(' ', 1) for l in recipe.labels)
    assert labels['org.alphafold-hpc-kit.variant'] == variant
    for key in recipes.PIN_KEYS:
        assert labels['org.alphafold-hpc-kit.' + key] == row[key], key
    assert any('-f /opt/alphafold-hpc-kit/recipes/%s.conda.yml' % variant in line for line in recipe.install)
    assert any('pip install' in line and '/opt/alphafold-hpc-kit' in line for line in recipe.install)
    assert 'ALPHAFOLD_KIT_VARIANT=%s' % variant in recipe.environ


@pytest.mark.parametrize('variant', sorted(ROWS))
def test_conda_file_pins_exactly_its_row(variant):
    row = ROWS[variant]
    with open('%s/%s.conda.yml' % (recipes.RECIPES, variant)) as f:
        lines = [l.strip().lstrip('- ').strip() for l in f]
    for pin in ('python=' + row['python'], 'cudnn=' + row['cudnn'], 'hmmer=' + row['hmmer'],
                'hhsuite=' + row['hhsuite'], 'kalign2=' + row['kalign'], 'openmm=' + row['openmm'],
                'jax==' + row['jax'], 'jaxlib==' + row['jaxlib'], 'tensorflow-cpu==' + row['tensorflow'],
                'git+https://github.com/google-deepmind/alphafold.git@' + row['alphafold']):
        assert pin in lines, pin


def test_a_new_row_renders_into_both_recipes(tmp_path):
    """What a site gets when it adds a variant: a CUDA 13 row and an older CUDA 11.8 one."""
    new = dict(ROWS['cuda12'], base_image='nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04', python='3.12',
               cuda='13.0.1', cudnn='9.1')
    conda = recipes.conda_yml('cuda13', new).splitlines()
    assert conda[:2] == ['# Generated from recipes/variants.ini [cuda13] by `python -m installer recipes`; do not edit.',
                         'name: alphafold-cuda13']
    assert '  - python=3.12' in conda and '  - cuda-version=13.0' in conda and '  - cudnn=9.1' in conda
    assert '    - --find-links %s' % recipes.JAX_WHEELS['current'] in conda
    older = recipes.conda_yml('cuda11.8', dict(new, cuda='11.8.0')).splitlines()
    assert '  - cudatoolkit=11.8' in older and '    - --find-links %s' % recipes.JAX_WHEELS['legacy'] in older
    path = tmp_path / 'cuda13.def'
    path.write_text(recipes.apptainer_def('cuda13', new))
    recipe = list(SingularityParser(str(path)).recipe.values())[0]
    assert recipe.fromHeader == new['base_image']
    assert 'org.alphafold-hpc-kit.python 3.12' in recipe.labels and 'org.alphafold-hpc-kit.cuda 13.0.1' in recipe.labels
    assert any('/opt/conda/lib/python3.12/site-packages/alphafold/common/' in line for line in recipe.install)
    assert any('recipes/cuda13.conda.yml' in line for line in recipe.install)


def test_a_row_missing_a_pin_is_refused(tmp_path):
    table = tmp_path / 'variants.ini'
    table.write_text('[cuda13]\nbase_image = nvidia/cuda:13.0.1\npython = 3.12\n')
    with pytest.raises(KitError) as err:
        recipes.variants(str(table))
    assert '[cuda13] lacks cuda, cudnn, jax' in err.value.problem
