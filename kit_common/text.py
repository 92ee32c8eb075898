"""Lists in log lines and messages: a batch can name a million targets, and one log line must stay
readable (a 10^6-record batch once logged every name in one 7 MB line)."""

SHOWN = 10


def listing(items, shown=SHOWN):
    """'a, b, c' for a few items; the first `shown` and how many more for a long list."""
    items = list(items)
    if len(items) <= shown:
        return ', '.join(items)
    return '%s and %d more' % (', '.join(items[:shown]), len(items) - shown)
