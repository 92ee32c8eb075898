"""python -m installer {install,uninstall,check-install,recipes,locks,finish-stack}: what the Makefile
and the image definitions call."""
import argparse
import logging
import os
import sys

from installer import install, locks, methods, recipes, stack
from kit_common import entry
from kit_common.errors import EXIT_FAILED, EXIT_OK, KitError

logger = logging.getLogger(__name__)


def parser():
    ap = argparse.ArgumentParser(prog='python -m installer', description='Install the AlphaFold HPC kit.')
    sub = ap.add_subparsers(dest='command', required=True)
    for name in ('install', 'uninstall', 'check-install'):
        p = sub.add_parser(name)
        p.add_argument('--prefix', required=True)
        # uninstall and check-install: optional when exactly one variant is installed
        p.add_argument('--variant', required=name == 'install')
        if name == 'install':
            p.add_argument('--method', required=True, choices=sorted(methods.METHODS))
            p.add_argument('--site-config')
            p.add_argument('--make-default', action='store_true',
                           help='make this variant the default module even when another one is (DEFAULT=yes)')
            add_alphafold_source(p)
        if name == 'check-install':
            p.add_argument('--gpu', action='store_true', help='also require a visible GPU')
    sub.add_parser('recipes', help='regenerate recipes/*.def and *.conda.yml from recipes/variants.ini')
    sub.add_parser('locks', help='resolve recipes/<variant>.requirements.txt from recipes/variants.ini (uv, PyPI)')
    p = sub.add_parser('finish-stack', help='the pip half of a variant, in the environment whose python runs this')
    p.add_argument('--variant', required=True)
    p.add_argument('--env', required=True, help='the environment (its bin/python is used)')
    add_alphafold_source(p)
    p.add_argument('--venv-extra', action='store_true', help='also the variant\'s venv_extra pins (no conda)')
    p.add_argument('--editable', action='store_true', help='install the kit editable (make deps)')
    return ap


def add_alphafold_source(p):
    p.add_argument('--alphafold-source', help='ALPHAFOLD_SOURCE: a git archive (sha256-checked) or a directory '
                   'of them, a checkout, or pip requirements, instead of cloning the variant\'s AlphaFold revision '
                   '(METHOD=conda|venv; sites without GitHub)')


def run(args):
    if args.command == 'install':
        install.install(args.prefix, args.variant, args.method, args.site_config, args.alphafold_source,
                        args.make_default)
    elif args.command == 'uninstall':
        install.uninstall(args.prefix, args.variant)
    elif args.command == 'check-install':
        return EXIT_FAILED if install.check_install(args.prefix, args.variant, args.gpu) else EXIT_OK
    elif args.command == 'finish-stack':
        rows = recipes.variants()
        if args.variant not in rows:
            raise KitError('unknown variant %r' % args.variant, 'choose one of %s' % ', '.join(rows))
        row = rows[args.variant]
        stack.finish(os.path.join(args.env, 'bin', 'python'), args.variant, row, args.alphafold_source,
                     locks.top_level(row, 'venv_extra') if args.venv_extra else (), args.editable)
    else:
        generate = locks.generate if args.command == 'locks' else lambda _rows: recipes.generate()
        for path in generate(recipes.variants()):
            logger.info('wrote %s', path)
    return 0


def main(argv=None):
    args = parser().parse_args(argv)
    return entry.run(lambda _argv: run(args), argv, 'make %s' % args.command)


if __name__ == '__main__':
    sys.exit(main())
