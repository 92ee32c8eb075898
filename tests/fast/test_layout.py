"""The architecture holds: the CPU-stage package imports no model code, the shared layer needs only
the standard library, and both executors implement the one interface."""
import ast
import inspect
import os
import subprocess
import sys

from conftest import ROOT
from fold_runtime.batch.executors import EXECUTORS, base

MODEL_MODULES = ('jax', 'jaxlib', 'haiku', 'tensorflow', 'alphafold.model')


def loaded_model_modules(imports):
    code = ('import sys, pkgutil, importlib\n%s\nprint([m for m in %r if m in sys.modules])' % (imports, MODEL_MODULES))
    res = subprocess.run([sys.executable, '-c', code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    assert res.returncode == 0, res.stdout
    return set(ast.literal_eval(res.stdout.strip().splitlines()[-1]))


def test_the_cpu_stage_package_imports_no_model_code():
    """Nothing beyond what AlphaFold's own data pipeline imports (DeepMind's a4315dd reads jax.tree
    in residue_constants; the fork imports no jax there)."""
    alphafold_own = loaded_model_modules('import alphafold.data.pipeline, alphafold.data.pipeline_multimer')
    kit = loaded_model_modules(
        'import fold_runtime.cpu_stage as p, fold_runtime.cli, fold_runtime.batch.msa_task\n'
        'for m in pkgutil.iter_modules(p.__path__): importlib.import_module("fold_runtime.cpu_stage." + m.name)')
    assert kit <= alphafold_own and not {'haiku', 'tensorflow', 'alphafold.model'} & kit, (kit, alphafold_own)


def test_the_shared_layer_uses_the_standard_library_only():
    folder = os.path.join(ROOT, 'kit_common')
    for name in os.listdir(folder):
        if not name.endswith('.py'):
            continue
        tree = ast.parse(open(os.path.join(folder, name)).read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                for module in modules:
                    top = module.split('.')[0]
                    assert top == 'kit_common' or top in sys.stdlib_module_names, (name, module)


def test_every_executor_implements_the_interface():
    abstract = [n for n, f in vars(base.Executor).items()
                if callable(getattr(f, '__func__', f)) and 'NotImplementedError' in inspect.getsource(
                    getattr(f, '__func__', f))]
    assert set(abstract) == {'submit', 'active', 'cancel', 'owns', 'cpu_stage_active'}
    for name, cls in EXECUTORS.items():
        assert issubclass(cls, base.Executor) and cls.name == name
        for method in abstract:
            assert method in vars(cls), (name, method)


def test_the_gpu_stage_starts_on_a_jax_without_monitoring():
    """STAND-IN for jax 0.2.17 (the legacy images): jax with its `monitoring` module removed. The
    compile clock must read zero there instead of failing every legacy GPU-stage run."""
    code = ('import jax\ndel jax.monitoring\nfrom fold_runtime.gpu_stage import jax_setup\n'
            'clock = jax_setup.CompileClock()\njax.jit(lambda x: x + 1)(1)\nprint(clock.snapshot())')
    res = subprocess.run([sys.executable, '-c', code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    assert res.returncode == 0 and res.stdout.strip().splitlines()[-1] == '(0.0, 0)', res.stdout


def test_the_compile_clock_counts_nested_traces_once():
    """jax 0.4.26 reports each jnp call's trace inside the model's: the clock measures the time
    covered, so compile time never exceeds the wall time it was part of (predict time = the rest)."""
    import time
    import jax
    import jax.numpy as jnp
    from fold_runtime.gpu_stage import jax_setup
    clock = jax_setup.CompileClock()
    clock._on_event(jax_setup._COMPILE_EVENTS[1], 1.0)    # an inner trace, then the one around it
    clock._on_event(jax_setup._COMPILE_EVENTS[1], 2.0)
    assert abs(clock.snapshot()[0] - 2.0) < 0.01
    clock = jax_setup.CompileClock()
    start = time.monotonic()
    jax.jit(lambda x: jnp.tanh(jnp.sum(jnp.square(x), axis=0)) @ jnp.ones((3, 3)))(jnp.ones((4, 3)))
    wall = time.monotonic() - start
    seconds, compiles = clock.snapshot()
    assert 0 < seconds <= wall and compiles >= 1
