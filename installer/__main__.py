"""python -m installer {install,uninstall,check-install,recipes}: what the Makefile calls."""
import argparse
import sys

from fold_runtime.errors import KitError


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m installer', description='Install the AlphaFold HPC kit.')
    sub = ap.add_subparsers(dest='command', required=True)
    for name in ('install', 'uninstall', 'check-install'):
        p = sub.add_parser(name)
        p.add_argument('--prefix', required=True)
        if name != 'check-install':
            p.add_argument('--variant', required=True)
        if name == 'install':
            p.add_argument('--method', required=True, choices=('apptainer', 'conda', 'venv'))
            p.add_argument('--site-config')
        if name == 'check-install':
            p.add_argument('--gpu', action='store_true', help='also require a visible GPU')
    sub.add_parser('recipes', help='regenerate recipes/*.def and *.conda.yml from recipes/variants.ini')
    args = ap.parse_args(argv)
    from installer import install, recipes
    try:
        if args.command == 'install':
            install.install(args.prefix, args.variant, args.method, args.site_config)
        elif args.command == 'uninstall':
            install.uninstall(args.prefix, args.variant)
        elif args.command == 'check-install':
            return 1 if install.check_install(args.prefix, args.gpu) else 0
        else:
            for path in recipes.generate():
                print('wrote', path)
    except KitError as exc:
        print('make %s: error: %s' % (args.command, exc), file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == '__main__':
    sys.exit(main())
