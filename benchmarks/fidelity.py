#!/usr/bin/env python3
"""Fidelity figures: ColabFold's fork as it ships vs DeepMind v2.3.2 semantics (what the kit runs).

Not a speed benchmark: it measures how far the fork's defaults move results, on the same inputs
in one run. Features of the demo target (e2_dbd) and the globin (hbb_human) on the real-data test
databases: MSA depth, duplicate rows, templates. Predictions on the demo target with the STAND-IN
test weights (same features, seed and weights): C-alpha and pLDDT differences, ranking.

  .venv/bin/python benchmarks/fidelity.py
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))


def built(script):
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', script)], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    return out.strip().splitlines()[-1]


def describe(feats):
    rows = [tuple(r) for r in feats['msa']]
    return 'MSA rows %d (distinct %d, num_alignments %d), templates %d %s' % (
        len(rows), len(set(rows)), feats['num_alignments'][0], len(feats['template_domain_names']),
        [n.decode() for n in feats['template_domain_names']])


def main():
    import json
    from stock_alphafold import stock_features, stock_predict_structure
    data_dir, weights_dir = built('build_test_dbs.py'), built('make_test_weights.py')
    work = tempfile.mkdtemp(prefix='fidelity-')
    feats = {}
    for name in ('e2_dbd', 'hbb_human'):
        fasta = os.path.join(data_dir, 'targets', name + '.fasta')
        for label, fork in (('fork defaults', True), ('DeepMind v2.3.2', False)):
            feats[name, fork] = stock_features(data_dir, 'full_dbs', fasta, os.path.join(work, label, name), fork)
            print('%-10s %-16s %s' % (name, label, describe(feats[name, fork])))
    with open(os.path.join(weights_dir, 'params', 'test_weights.json')) as f:
        overrides = json.load(f)['config_overrides']
    del overrides['model.global_config.bfloat16']   # the fork's default precision is what is measured
    models = ['model_1_ptm', 'model_3_ptm']
    runs = {fork: stock_predict_structure(feats['e2_dbd', False], weights_dir, models, 0, 3, overrides,
                                          fork_defaults=fork) for fork in (True, False)}
    for name in models:
        fork, deepmind = runs[True][3][name], runs[False][3][name]
        ca = [runs[f][1][name].atom_positions[:, 1] for f in (True, False)]
        print('e2_dbd %s, same features: C-alpha max |diff| %.3f A, mean %.3f A; pLDDT max |diff| %.2f, '
              'mean pLDDT %.2f (fork) vs %.2f (DeepMind); pTM %.4f vs %.4f' % (
                  name, np.abs(ca[0] - ca[1]).max(), np.linalg.norm(ca[0] - ca[1], axis=-1).mean(),
                  np.abs(np.asarray(fork['plddt'], np.float32) - deepmind['plddt']).max(),
                  float(np.mean(fork['plddt'])), float(np.mean(deepmind['plddt'])),
                  float(fork['ptm']), float(deepmind['ptm'])))
    print('ranking: fork %s, DeepMind %s' % (runs[True][0], runs[False][0]))


if __name__ == '__main__':
    main()
