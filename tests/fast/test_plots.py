"""The MSA-coverage picture as ColabFold draws it: rows valued by identity to the query, sorted,
gaps blank, and a coverage line counting the rows that cover each position."""
import numpy as np

from fold_runtime.gpu_stage import plots

G = plots.GAP


def test_coverage_rows_sorted_by_identity_with_gaps_blank():
    msa = np.array([[0, 1, 2, 3],     # the query
                    [0, 1, 5, 5],     # identity 0.5
                    [G, G, 2, 6],     # identity 0.25, gaps at 0 and 1
                    [0, 1, 2, 3],     # identity 1
                    [9, 9, 9, 9]])    # beyond num_alignments: left out, as in ColabFold
    lines = plots.coverage_lines(msa, 4)
    assert lines.shape == (4, 4)
    np.testing.assert_allclose(lines[0], [np.nan, np.nan, 0.25, 0.25])
    np.testing.assert_allclose(lines[1], [0.5] * 4)
    np.testing.assert_allclose(lines[2:], np.ones((2, 4)))
    fig = plots.coverage_figure(msa, 4)
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [3, 3, 4, 4])   # rows covering each position
    assert ax.get_ylabel() == 'sequences' and fig.axes[1].get_ylabel() == 'sequence identity to query'


def test_pae_of_a_complex_shows_iptm_and_chain_boundaries():
    """As ColabFold draws a complex: a line at each chain boundary (from asym_id), ipTM in the title."""
    feats = {'asym_id': np.array([1] * 3 + [2] * 2 + [3] * 4)}
    assert plots.chain_ends(feats) == (3, 5) and plots.chain_ends({}) == ()
    scores = {'m': {'ptm': 0.5, 'iptm': 0.25}}
    fig = plots.pae_figure({'m': (np.zeros((9, 9)), 31.75)}, scores, plots.chain_ends(feats))
    ax = fig.axes[0]
    assert ax.get_title() == 'm\npTM 0.500, ipTM 0.250'
    assert sorted(line.get_xdata()[0] for line in ax.get_lines() if line.get_xdata()[0] == line.get_xdata()[1]) \
        == [3.5, 5.5]
