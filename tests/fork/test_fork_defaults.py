"""ColabFold's fork as it ships differs from DeepMind's features: what the kit's fidelity layer
(and tests/fork/test_fork_equals_deepmind.py) has to restore, seen in the fork's own pipeline."""
from stock_alphafold import stock_features


def test_the_forks_features_differ_where_deepmind_semantics_change_them(data_dir, targets, tmp_path):
    """The fork as it ships keeps duplicate rows and 1A7G: the parity tests would notice."""
    fork = stock_features(data_dir, 'reduced_dbs', targets['e2_dbd'], str(tmp_path / 'fork'), fork_defaults=True)
    rows = [tuple(r) for r in fork['msa']]
    assert len(set(rows)) < len(rows) and fork['num_alignments'][0] == len(rows)
    assert b'1a7g_E' in list(fork['template_domain_names'])
