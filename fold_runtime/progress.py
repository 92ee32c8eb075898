"""Heartbeat lines for batch logs: while a long step runs (a search, compiling and predicting a
model, a relaxation), one plain line every N seconds names the step and its elapsed time, so an
hours-long jackhmmer or a 20-minute relax is visibly alive in a Slurm log. No carriage returns:
those turn a log file into one unreadable line.

Prediction and relaxation block inside jax or OpenMM, so their lines come from a thread; the
search loop polls its child processes anyway and ticks itself (no thread runs while it forks).
"""
import logging
import threading
import time

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = 60.0
_interval = [DEFAULT_INTERVAL]


def configure(interval):
    """Seconds between heartbeat lines for this process (--progress-interval)."""
    _interval[0] = float(interval)


def elapsed(seconds):
    """'45s', '12m05s', '3h02m'."""
    seconds = int(seconds)
    if seconds < 60:
        return '%ds' % seconds
    if seconds < 3600:
        return '%dm%02ds' % divmod(seconds, 60)
    return '%dh%02dm' % (seconds // 3600, seconds % 3600 // 60)


class Ticker(object):
    """tick() logs 'still running: <describe()>, <elapsed> so far' when interval seconds have passed
    since the last line; for loops that poll anyway (the searches: no thread while they fork)."""

    def __init__(self, describe):
        self.describe = describe if callable(describe) else (lambda: describe)
        self.started = self.last = time.time()

    def tick(self):
        now = time.time()
        if now - self.last >= _interval[0]:
            self.last = now
            log.info('  ... still running: %s, %s so far', self.describe(), elapsed(now - self.started))


class Heartbeat(Ticker):
    """with Heartbeat(describe): the same lines from a thread, for a step that blocks (inside jax
    or OpenMM) until it ends."""

    def __init__(self, describe):
        super(Heartbeat, self).__init__(describe)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name='heartbeat', daemon=True)

    def __enter__(self):
        self.started = self.last = time.time()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        return False

    def _beat(self):
        while not self.stop.wait(min(_interval[0], 1.0)):
            self.tick()
