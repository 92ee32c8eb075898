"""Per-target pictures, as ColabFold draws them, written atomically beside the models:
plddt.png (pLDDT per residue, one line per model), pae.png (the predicted aligned error of each
model that has one) and msa_coverage.png (the MSA's rows sorted by identity to the query).

The figures are built from the files every model leaves (confidence_<m>.json, pae_<m>.json), so
models predicted by earlier jobs are drawn with the new ones.
"""
import io
import json
import os

import numpy as np

from fold_runtime import target_layout
from kit_common import files

GAP = 21   # residue_constants.HHBLITS_AA_TO_ID['-']: the gap in features.pkl's msa array
DPI = 100


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')   # no display on compute nodes
    import matplotlib.pyplot as plt
    return plt


def plddt_figure(plddts, scores):
    """plddts: {model: per-residue pLDDT}, best first; one line per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for rank, (name, values) in enumerate(plddts.items()):
        ax.plot(np.arange(1, len(values) + 1), values,
                label='rank %d: %s (mean pLDDT %.1f)' % (rank + 1, name, scores[name]['mean_plddt']))
    ax.set_ylim(0, 100)
    ax.set_xlabel('residue')
    ax.set_ylabel('pLDDT')
    ax.set_title('Predicted lDDT per residue (70: confident, 90: very high)')
    ax.legend(fontsize=8, loc='lower left')
    fig.tight_layout()
    return fig


def pae_figure(paes, scores, chain_ends=()):
    """paes: {model: (PAE matrix, its maximum)}, best first; one panel (with a colour bar) per model.
    chain_ends: a complex's chain boundaries (residue counts), drawn as lines, as ColabFold does."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(paes), figsize=(4.2 * len(paes), 3.8), squeeze=False)
    for ax, (name, (pae, max_pae)) in zip(axes[0], paes.items()):
        image = ax.imshow(pae, cmap='bwr', vmin=0, vmax=max_pae, extent=(0.5, len(pae) + 0.5, len(pae) + 0.5, 0.5))
        for end in chain_ends:
            ax.axhline(end + 0.5, color='black', linewidth=0.8)
            ax.axvline(end + 0.5, color='black', linewidth=0.8)
        ptm, iptm = scores[name]['ptm'], scores[name].get('iptm')
        ax.set_title('%s\npTM %s%s' % (name, '%.3f' % ptm if ptm is not None else 'n/a',
                                       '' if iptm is None else ', ipTM %.3f' % iptm), fontsize=9)
        ax.set_xlabel('scored residue')
        ax.set_ylabel('aligned residue')
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='expected position error (Å)')
    fig.tight_layout()
    return fig


def coverage_lines(msa, num_alignments):
    """ColabFold's plot_msa_v2 for one chain: each row's non-gap positions valued by the row's
    identity to the query (gaps NaN), rows sorted by identity, lowest first."""
    msa = np.asarray(msa)[:num_alignments]
    non_gap = msa != GAP
    identity = (msa == msa[0]).mean(-1) / (non_gap.any(-1) + 1e-8)
    lines = non_gap.astype(float)
    lines[lines == 0] = np.nan
    order = identity.argsort()
    return lines[order] * identity[order, None]


def coverage_figure(msa, num_alignments):
    plt = _pyplot()
    lines = coverage_lines(msa, num_alignments)
    fig, ax = plt.subplots(figsize=(8, 5))
    image = ax.imshow(lines, interpolation='nearest', aspect='auto', cmap='rainbow_r', vmin=0, vmax=1,
                      origin='lower', extent=(0, lines.shape[1], 0, lines.shape[0]))
    ax.plot(np.arange(lines.shape[1]) + 0.5, (~np.isnan(lines)).sum(0), color='black', label='coverage')
    ax.set_xlim(0, lines.shape[1])
    ax.set_ylim(0, lines.shape[0] * 1.05)   # headroom: full coverage would hide the line on the frame
    ax.set_title('Sequence coverage: %d MSA rows' % lines.shape[0])
    ax.set_xlabel('position')
    ax.set_ylabel('sequences')
    fig.colorbar(image, ax=ax, label='sequence identity to query')
    fig.tight_layout()
    return fig


def save(fig, path):
    """The PNG, written atomically (rendered in memory, then files.write_bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=DPI)
    _pyplot().close(fig)
    files.write_bytes(path, buf.getvalue())


def _json(tdir, name):
    with open(os.path.join(tdir, name)) as f:
        return json.load(f)


def chain_ends(feats):
    """Where each chain but the last ends (residues), from a complex's asym_id; () for a monomer."""
    if 'asym_id' not in feats:
        return ()
    asym_id = np.asarray(feats['asym_id'])
    return tuple(int(i) for i in np.flatnonzero(np.diff(asym_id)) + 1)


def write_all(tdir, ranked, scores, feats):
    """The three pictures of a target; ranked: its models, best first; scores: scores.json's."""
    plddts = {n: _json(tdir, target_layout.confidence(n))['confidenceScore'] for n in ranked}
    save(plddt_figure(plddts, scores), os.path.join(tdir, target_layout.PLDDT_PLOT))
    paes = {}
    for name in ranked:
        if os.path.exists(os.path.join(tdir, target_layout.pae_json(name))):
            pae = _json(tdir, target_layout.pae_json(name))[0]
            paes[name] = (np.asarray(pae['predicted_aligned_error']), pae['max_predicted_aligned_error'])
    if paes:
        save(pae_figure(paes, scores, chain_ends(feats)), os.path.join(tdir, target_layout.PAE_PLOT))
    else:   # none of the models predicts PAE (no _ptm): no picture of an earlier run's
        files.remove(os.path.join(tdir, target_layout.PAE_PLOT))
    # num_alignments: per residue in monomer features, one number (the rows before padding) in a complex's
    rows = int(np.ravel(feats['num_alignments'])[0])
    save(coverage_figure(feats['msa'], rows), os.path.join(tdir, target_layout.COVERAGE_PLOT))
