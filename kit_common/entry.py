"""The one entry-point wrapper of every command: logging set up, SIGTERM turned into an orderly
exit, and a KitError printed once as its message and fix, with its exit status."""
import logging
import signal
import sys

from kit_common import site_config
from kit_common.errors import KitError

LOGGER = 'alphafold_kit'


def setup_logging(stream=None, log_file=None, quiet=False):
    """Plain message lines (batch logs are read by people and grep) on stderr, and optionally
    appended to a file with timestamps."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    if not quiet:
        console = logging.StreamHandler(stream or sys.stderr)
        console.setFormatter(logging.Formatter('%(message)s'))
        root.addHandler(console)
    if log_file:
        to_file = logging.FileHandler(log_file)
        to_file.setFormatter(logging.Formatter('%(asctime)s %(message)s', '%Y-%m-%dT%H:%M:%S'))
        root.addHandler(to_file)


def _terminate(signum, frame):
    # Slurm's scancel and time limits send SIGTERM: unwind, so child processes are stopped too.
    raise SystemExit(128 + signum)


def run(func, argv, prog):
    """Call func(argv) and return its exit status; KitError -> message on stderr (and in the log
    file, if any) and its exit status; Ctrl-C -> 130."""
    signal.signal(signal.SIGTERM, _terminate)
    setup_logging()   # a command may set up its own (data_sync adds its log file)
    try:
        return func(argv) or 0
    except KitError as exc:
        for handler in logging.getLogger().handlers:   # the log file keeps the error too
            if isinstance(handler, logging.FileHandler):
                handler.emit(logging.makeLogRecord({'msg': 'error: %s' % exc, 'levelno': logging.ERROR}))
        print('%s: error: %s' % (prog, exc), file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


# What answers without the site config, so a broken one can still be diagnosed.
SITE_FREE = ('-h', '--help', '--version', '--explain')


def main(func, argv, prog):
    """A kit command: the site config ($ALPHAFOLD_SITE_CONFIG) read and checked before anything
    else, so a broken one stops it (exit 2, naming file, key and fix) whatever its options cover."""
    def started(args):
        if not set(SITE_FREE) & set(args):
            site_config.current()
        return func(args)
    sys.exit(run(started, sys.argv[1:] if argv is None else argv, prog))
