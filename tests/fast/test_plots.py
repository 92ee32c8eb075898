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
