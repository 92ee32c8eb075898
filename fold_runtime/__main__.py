"""python -m fold_runtime <stage> ...: the same commands as the alphafold-* wrappers."""
import sys

from fold_runtime import cli
from fold_runtime.batch import cli as batch_cli
from kit_common.errors import EXIT_INPUT

COMMANDS = {'msa': cli.msa_main, 'predict': cli.predict_main, 'run': cli.run_main, 'batch': batch_cli.main}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print('usage: python -m fold_runtime {%s} [options]   (--help after a command for its options)'
              % ','.join(COMMANDS), file=sys.stderr)
        sys.exit(EXIT_INPUT)
    COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == '__main__':
    main()
