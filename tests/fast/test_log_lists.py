"""Long lists in log lines are summarised: a 10^6-record batch logged one 7 MB line (issue #22, N24)."""
import logging

from fold_runtime.batch.executors.local import LocalExecutor
from kit_common import text


def test_a_long_list_names_the_first_few_and_counts_the_rest():
    assert text.listing(['a', 'b']) == 'a, b'
    assert text.listing(['t%d' % i for i in range(1000000)]) == '%s and 999990 more' % ', '.join(
        't%d' % i for i in range(10))


def test_a_dry_run_of_a_million_targets_logs_a_short_line(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    executor = LocalExecutor.__new__(LocalExecutor)     # a dry run reads no settings
    assert executor.submit(['target_%d' % i for i in range(1000000)], 1000000, True, None, None) == 0
    line = caplog.messages[-1]
    assert len(line) < 300 and 'would run 1000000 CPU stage(s): target_0, ' in line and '999990 more' in line
