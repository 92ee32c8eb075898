"""The one exception type users see: a problem, how to fix it, and an exit status."""

# Exit statuses, documented in every command's --help.
EXIT_INPUT = 2      # bad arguments, options, configuration or input files
EXIT_MISSING = 3    # a database, binary or weights file is missing
EXIT_TOOL = 4       # a search tool failed or timed out
EXIT_IO = 5         # output cannot be written (permissions, full disk)
EXIT_MISMATCH = 6   # existing outputs were made from other inputs
EXIT_GPU = 7        # no GPU when one is required, or the GPU ran out of memory
EXIT_RELAX = 8      # relaxation failed; the unrelaxed ranked outputs were written

EXIT_HELP = """exit status: 0 success, 2 bad input, options or site config, 3 missing
database/binary/weights, 4 a tool failed or timed out, 5 output not writable (permissions,
disk full), 6 existing outputs/features came from other inputs (use --overwrite), 7 no GPU or
GPU out of memory, 8 relaxation failed (unrelaxed ranked_*.pdb were written)"""


class KitError(Exception):
    def __init__(self, problem, fix, exit_code=EXIT_INPUT):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.exit_code = exit_code

    def __str__(self):
        return '%s\n  fix: %s' % (self.problem, self.fix)
