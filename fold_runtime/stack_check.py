"""python -m fold_runtime.stack_check [--gpu]: does this environment's stack run AlphaFold?

What `make check-install` and the images' %test run inside the environment. Each check prints
OK or FAIL; the exit status is 0 when the stack works, else EXIT_FAILED (kit_common.errors). Importing the
packages is not enough (a stack with the wrong dm-haiku, protobuf or OpenMM imports `alphafold`
fine): the checks import the model, relax and data pipeline modules, read the stereo-chemistry
table, build a model config, start jax and OpenMM, and find kalign 2.04.
"""
import argparse
import sys
import traceback

import fold_runtime
from kit_common.errors import EXIT_FAILED, EXIT_OK


def checks(want_gpu):
    """[(label, function)]: a function returns a detail string, or raises when the check fails."""
    return [
        ('kit --version', fold_runtime.version_text),
        ('imports alphafold.model.model, alphafold.relax.relax, alphafold.data.pipeline', _imports),
        ('reads the stereo-chemistry table', _stereo),
        ('builds a model config', _config),
        ('jax starts' + (' and sees a GPU' if want_gpu else ''), lambda: _jax(want_gpu)),
        ('OpenMM starts' + (' with its CUDA platform' if want_gpu else ''), lambda: _openmm(want_gpu)),
        ('kalign 2.04 found (template realignment as DeepMind\'s)', _kalign),
    ]


def _imports():
    import alphafold.data.pipeline  # noqa: F401
    import alphafold.model.model  # noqa: F401
    import alphafold.relax.relax  # noqa: F401
    return ''


def _stereo():
    from alphafold.common import residue_constants
    bonds, _, angles = residue_constants.load_stereo_chemical_props()
    if not bonds or not angles:
        raise ValueError('the table is empty')
    return '%d residues' % len(bonds)


def _config():
    from alphafold.model import config
    name = 'model_1_ptm' if 'model_1_ptm' in config.CONFIG_DIFFS else 'model_1'
    cfg = config.model_config(name)
    return '%s, %d evoformer blocks' % (name, cfg.model.embeddings_and_evoformer.evoformer_num_block)


def _jax(want_gpu):
    import jax
    devices = jax.devices()
    if want_gpu and not any(d.platform == 'gpu' for d in devices):
        raise RuntimeError('no GPU visible to jax (devices: %s)' % ', '.join(map(str, devices)))
    return 'jax %s, devices: %s' % (jax.__version__, ', '.join(map(str, devices)))


def _openmm(want_gpu):
    try:
        import openmm
    except ImportError:   # OpenMM 7.x, the legacy images
        from simtk import openmm
    names = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    if want_gpu and 'CUDA' not in names:
        raise RuntimeError('OpenMM has no CUDA platform (%s): GPU relax would fail' % ', '.join(names))
    return 'OpenMM %s, platforms: %s' % (openmm.Platform.getOpenMMVersion(), ', '.join(names))


def _kalign():
    from fold_runtime.cpu_stage import binaries
    return binaries.resolve('kalign')


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m fold_runtime.stack_check', description=__doc__.split('\n\n')[0])
    ap.add_argument('--gpu', action='store_true', help='also require a GPU for jax and CUDA for OpenMM')
    args = ap.parse_args(argv)
    failures = 0
    for label, check in checks(args.gpu):
        try:
            detail = check()
        except Exception as e:   # every failure is a FAIL line, whatever the stack raised
            failures += 1
            last = traceback.extract_tb(e.__traceback__)[-1]
            print('FAIL %s: %s: %s (%s:%d)' % (label, type(e).__name__, e, last.filename, last.lineno), flush=True)
        else:
            print('OK   %s%s' % (label, ': %s' % detail if detail else ''), flush=True)
    return EXIT_FAILED if failures else EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
