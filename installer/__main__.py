"""python -m installer {install,uninstall,check-install,recipes}: what the Makefile calls."""
import argparse
import logging
import sys

from installer import install, methods, recipes
from kit_common import entry

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
        if name == 'check-install':
            p.add_argument('--gpu', action='store_true', help='also require a visible GPU')
    sub.add_parser('recipes', help='regenerate recipes/*.def and *.conda.yml from recipes/variants.ini')
    return ap


def run(args):
    if args.command == 'install':
        install.install(args.prefix, args.variant, args.method, args.site_config)
    elif args.command == 'uninstall':
        install.uninstall(args.prefix, args.variant)
    elif args.command == 'check-install':
        return 1 if install.check_install(args.prefix, args.variant, args.gpu) else 0
    else:
        for path in recipes.generate():
            logger.info('wrote %s', path)
    return 0


def main(argv=None):
    args = parser().parse_args(argv)
    return entry.run(lambda _argv: run(args), argv, 'make %s' % args.command)


if __name__ == '__main__':
    sys.exit(main())
