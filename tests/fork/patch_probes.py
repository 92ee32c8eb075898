"""What the fork does where the kit's patches change it, seen through the fork's own modules, in a
fresh interpreter (the patches are process-wide). `python patch_probes.py [--patched] NAME...`
prints {NAME: result} as JSON; --patched first applies the patches as the two stages do at start-up.
Run with the kit on PYTHONPATH (tests/fork/test_patches.py does)."""
import gzip
import json
import re
import sys

import numpy as np

BIOPYTHON_PDB = '/usr/share/doc/python-biopython-doc/Tests/PDB/'
# 1A8O (HIV capsid domain, SeMet) with residues renamed to modified, D- and ambiguous codes.
RENAMED = {'GLN': 'PCA', 'ALA': 'DAL', 'CYS': 'SEC', 'ASP': 'ASX', 'GLU': 'GLX', 'LYS': 'DLY'}


def renamed_mmcif():
    text = gzip.open(BIOPYTHON_PDB + '1A8O.cif.gz', 'rt').read()
    for old, new in RENAMED.items():
        text = re.sub(r'\b%s\b' % old, new, text)
    return text


def template_sequence():
    from alphafold.data import mmcif_parsing
    parsed = mmcif_parsing.parse(file_id='1a8o', mmcif_string=renamed_mmcif())
    return parsed.mmcif_object.chain_to_seqres['A']


def legacy_keys():
    import jax
    return np.asarray(jax.random.split(jax.random.PRNGKey(0))).tolist()


def attention_softmax():
    """The fork's Attention on bfloat16 inputs against the same computation with the softmax in
    float32 (DeepMind's) and in bfloat16: the largest difference from each."""
    import haiku as hk
    import jax
    import jax.numpy as jnp
    import ml_collections
    from alphafold.model import modules
    cfg = ml_collections.ConfigDict({'num_head': 2, 'gating': False})
    gc = ml_collections.ConfigDict({'zero_init': False, 'use_pallas': False})
    rng = np.random.RandomState(0)
    q_data = jnp.asarray(rng.normal(size=(3, 8, 16)) * 4, jnp.bfloat16)
    bias = jnp.zeros((3, 1, 1, 8), jnp.bfloat16)
    fn = hk.transform(lambda q: modules.Attention(cfg, gc, 16)(q, q, bias))
    params = fn.init(jax.random.PRNGKey(1), q_data)
    out = fn.apply(params, None, q_data)
    p = params['attention']

    def by_hand(softmax):
        q = jnp.einsum('bqa,ahc->bqhc', q_data, p['query_w']) * 8 ** (-0.5)
        k = jnp.einsum('bka,ahc->bkhc', q_data, p['key_w'])
        v = jnp.einsum('bka,ahc->bkhc', q_data, p['value_w'])
        weights = softmax(jnp.einsum('bqhc,bkhc->bhqk', q, k) + bias)
        avg = jnp.einsum('bhqk,bkhc->bqhc', weights, v)
        return jnp.einsum('bqhc,hco->bqo', avg, p['output_w']) + p['output_b']
    float32 = by_hand(lambda x: jax.nn.softmax(x.astype(jnp.float32)).astype(x.dtype))
    return {'float32': _max_diff(out, float32), 'bfloat16': _max_diff(out, by_hand(jax.nn.softmax))}


def _max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))


def structure_module_precision():
    """The precision of a float32 matmul traced inside the fork's multimer structure-module context
    (modules_multimer: `with jax.default_matmul_precision('highest')`)."""
    import jax
    import jax.numpy as jnp
    from alphafold.model import modules_multimer
    a = jnp.ones((4, 4), jnp.float32)
    with modules_multimer.jax.default_matmul_precision('highest'):
        text = jax.jit(jnp.dot).lower(a, a).as_text()
    return 'HIGHEST' if 'HIGHEST' in text else 'default'


def relax_tolerance():
    """The force tolerance OpenMM's minimiser gets from AmberRelaxation(tolerance=2.39), in kJ/mol/nm
    (the minimisation itself is skipped)."""
    import openmm
    from alphafold.relax import relax
    seen = []
    openmm.app.Simulation.minimizeEnergy = lambda self, tolerance, maxIterations: seen.append(tolerance)
    relax.AmberRelaxation(max_iterations=0, tolerance=2.39, stiffness=10.0, exclude_residues=[],
                          max_outer_iterations=1, use_gpu=False).process(prot=_complete_residues())
    return seen[0].value_in_unit(openmm.unit.kilojoule_per_mole / openmm.unit.nanometer)


def msa_rows():
    """The rows of MSA features made from two MSAs that share sequences (DataPipeline's call)."""
    from alphafold.data import parsers, pipeline
    msas = [parsers.Msa(seqs, [[0] * 3] * 3, ['s%d' % i for i in range(3)]) for seqs in (['MKV', 'MRV', 'MKV'],
                                                                                         ['MKV', 'AAA', 'MRV'])]
    return len(pipeline.make_msa_features(msas)['msa'])


def template_prefilter():
    """What the template featurizer's check says of a hit that is 95% of the query, aligned in full
    (the fork's _process_single_hit passes max_subsequence_ratio=1.0)."""
    import datetime
    from alphafold.data import templates
    hit = type('Hit', (), {'hit_sequence': 'MKVLAAGIVALLGAAVSEAA', 'aligned_cols': 20})
    try:
        templates._assess_hhsearch_hit(hit, '1abc', 'MKVLAAGIVALLGAAVSEAA', {}, datetime.datetime(2100, 1, 1),
                                       max_subsequence_ratio=1.0)
    except templates.PrefilterError as err:
        return type(err).__name__
    return 'kept'


def outer_product_mean():
    """Whether the fork's outer product mean, traced on a 4-row MSA, forms DeepMind's outer product
    [residues, channels, channels, residues] or folds the output weights in first."""
    import haiku as hk
    import jax
    import jax.numpy as jnp
    from alphafold.model import config, modules
    cfg = config.model_config('model_1_multimer_v3')
    gc = cfg.model.global_config
    gc.use_pallas = False
    act, mask = jnp.ones((4, 8, 256), jnp.float32), jnp.ones((4, 8), jnp.float32)
    fn = hk.transform(lambda a, m: modules.OuterProductMean(
        cfg.model.embeddings_and_evoformer.evoformer.outer_product_mean, gc, 128)(a, m, is_training=False))
    params = fn.init(jax.random.PRNGKey(0), act, mask)
    jaxpr = str(jax.make_jaxpr(lambda a, m: fn.apply(params, None, a, m))(act, mask))
    return 'deepmind' if 'f32[8,32,32,8] = dot_general' in jaxpr else 'reassociated'


def _complete_residues():
    """1A8O's first run of residues with every heavy atom, as relax requires."""
    import dataclasses
    from alphafold.common import protein, residue_constants
    prot = protein.from_pdb_string(gzip.open(BIOPYTHON_PDB + '1A8O.pdb.gz', 'rt').read())
    full = np.all(prot.atom_mask == residue_constants.STANDARD_ATOM_MASK[prot.aatype], axis=-1)
    start = int(np.argmax(full))
    keep = slice(start, start + int(np.argmin(full[start:])))
    return dataclasses.replace(prot, **{f.name: getattr(prot, f.name)[keep] for f in dataclasses.fields(prot)
                                        if getattr(prot, f.name) is not None})


def main(args):
    if args[:1] == ['--patched']:
        from fold_runtime.compat import fidelity
        fidelity.apply_data()
        fidelity.apply_model()
        args = args[1:]
    print(json.dumps({name: globals()[name]() for name in args}))


if __name__ == '__main__':
    main(sys.argv[1:])
