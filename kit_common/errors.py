"""The one exception type users see: a problem, how to fix it, and an exit status."""
import collections
import textwrap

ExitStatus = collections.namedtuple('ExitStatus', 'code name meaning')

# Every exit status a kit command documents, in order: --help epilogs and the docs are made from
# (or tested against) this list, never written out by hand.
EXIT_STATUSES = []


def _status(code, name, meaning):
    EXIT_STATUSES.append(ExitStatus(code, name, meaning))
    return code


EXIT_OK = _status(0, 'ok', 'success')
EXIT_FAILED = _status(1, 'failed', 'not all succeeded: a target, a stack check, or (alphafold-data status) '
                                   'the node-local copy is missing or stale')
EXIT_INPUT = _status(2, 'input', 'bad input, options or site config')
EXIT_MISSING = _status(3, 'missing', 'missing database/binary/weights (alphafold-data status: a database is '
                                     'incomplete)')
EXIT_TOOL = _status(4, 'tool', 'a tool failed or timed out')
EXIT_IO = _status(5, 'io', 'output not writable (permissions, disk full)')
EXIT_MISMATCH = _status(6, 'mismatch', 'existing outputs/features came from other inputs (use --overwrite)')
EXIT_GPU = _status(7, 'gpu', 'no GPU or GPU out of memory')
EXIT_RELAX = _status(8, 'relax', 'relaxation failed (unrelaxed ranked_*.pdb were written)')


def exit_help(codes=None):
    """The 'exit status:' paragraph of a --help epilog: every status, or those in codes."""
    chosen = [s for s in EXIT_STATUSES if codes is None or s.code in codes]
    return textwrap.fill('exit status: ' + ', '.join('%d %s' % (s.code, s.meaning) for s in chosen), 96)


EXIT_HELP = exit_help()


class KitError(Exception):
    def __init__(self, problem, fix, exit_code=EXIT_INPUT):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.exit_code = exit_code

    def __str__(self):
        return '%s\n  fix: %s' % (self.problem, self.fix)
