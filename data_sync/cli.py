"""alphafold-data (python -m data_sync): plan, verify, publish, stage, warm, status, prune."""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import time

from data_sync import layout, manifest, registry, stage as staging, store
from fold_runtime import site_config
from fold_runtime.errors import EXIT_INPUT, EXIT_IO, EXIT_MISMATCH, KitError

# Monitoring-style exit codes for `status`.
OK, WARNING, CRITICAL = 0, 1, 2


def selected(args):
    names = registry.DOWNLOAD_PRESETS[args.preset]
    if args.databases:
        wanted = [n.strip() for n in args.databases.split(',') if n.strip()]
        known = registry.DATABASES[args.db_version]
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise KitError('unknown database(s): %s' % ', '.join(unknown), 'choose from %s' % ', '.join(sorted(known)))
        names = wanted
    return [registry.DATABASES[args.db_version][n] for n in names if n in registry.DATABASES[args.db_version]]


def missing_files(tree, db):
    return [rel for rel in db.required if not os.path.exists(os.path.join(tree, rel))]


def cmd_plan(args):
    tree = layout.shared_dir(args.data_root)
    need = 0
    for db in selected(args):
        missing = missing_files(tree, db)
        state = 'missing %d of %d files' % (len(missing), len(db.required)) if missing else 'present'
        print('%-12s %-26s download %7.1f GB, unpacked %7.1f GB' % (db.name, state, db.download_bytes / 1e9,
                                                                   db.unpacked_bytes / 1e9))
        if args.show_urls:
            for src in db.sources:
                print('    %s' % registry.mirrored(src.url, args.rsync_mirror if src.archive == 'rsync' else args.mirror))
        if missing:
            need += db.download_bytes + db.unpacked_bytes
    os.makedirs(args.data_root, exist_ok=True)
    free = shutil.disk_usage(args.data_root).free
    print('needed %.1f GB, free %.1f GB on %s' % (need / 1e9, free / 1e9, args.data_root))
    if need > free:
        raise KitError('not enough space on %s: %.1f GB needed, %.1f GB free' % (args.data_root, need / 1e9, free / 1e9),
                       'free space, choose another --data-root, or limit --databases / use --preset reduced_dbs', EXIT_IO)
    return 0


def cmd_verify(args):
    ident, tree = store.current_version(args.data_root)
    wanted = manifest.load(tree) if tree else None
    if wanted is None:
        raise KitError('no published version with a manifest under %s' % args.data_root,
                       'run alphafold-data publish (or sync) first', EXIT_MISMATCH)
    problems = manifest.verify(tree, wanted, databases={db.name for db in selected(args)} if args.databases else None)
    for p in problems:
        print('BAD  %s' % p)
    if problems:
        raise KitError('%d file(s) of version %s do not match its manifest' % (len(problems), ident),
                       'rerun alphafold-data sync to fetch them again', EXIT_MISMATCH)
    print('version %s verified: %d files' % (ident, len(wanted['files'])))
    return 0


def cmd_publish(args):
    """Publish an unpacked tree (--from DIR) as a new version, after checking it is complete."""
    source = os.path.abspath(args.source)
    incomplete = {db.name: missing_files(source, db) for db in selected(args) if missing_files(source, db)}
    if incomplete:
        raise KitError('%s is incomplete: %s' % (source, '; '.join('%s misses %s' % (k, ', '.join(v[:3]))
                                                                     for k, v in incomplete.items())),
                       'download the missing databases first; `current` was not changed', EXIT_MISMATCH)
    built = manifest.build(source)
    manifest.write(source, built)
    final = store.publish(args.data_root, source, built['id'])
    print('published %s as %s' % (built['id'], final))
    return 0


def cmd_stage(args):
    if not args.local_root:
        raise KitError('no node-local root', 'pass --local-root DIR or set local_root in the site config')
    staging.stage(args.data_root, args.local_root, jobs=args.jobs, log=print)
    return 0


def cmd_warm(args):
    """The paper's 'memory persistence': HHblits' prefilter and index files into the page cache."""
    tree = layout.choose_data_dir(args.data_root, args.local_root)[0]
    files = sorted(glob.glob(os.path.join(tree, '*', '*_cs219.ffdata')) + glob.glob(os.path.join(tree, '*', '*.ffindex')))
    if not files:
        raise KitError('no HH-suite index files under %s' % tree, 'check --data-root / the staged copy')
    if shutil.which('vmtouch'):
        subprocess.run(['vmtouch', '-t', '-q'] + files, check=True)
    else:
        for path in files:
            with open(path, 'rb') as f:
                while f.read(1 << 24):
                    pass
    total = sum(os.path.getsize(p) for p in files)
    report = subprocess.run(['fincore', '--bytes', '--noheadings', '--output', 'RES'] + files,
                            stdout=subprocess.PIPE, universal_newlines=True) if shutil.which('fincore') else None
    resident = sum(int(l.split()[0]) for l in report.stdout.splitlines() if l.strip()) if report and report.returncode == 0 else None
    print('warmed %d files, %.2f GB%s' % (len(files), total / 1e9,
                                         '' if resident is None else ', %.2f GB resident in the page cache' % (resident / 1e9)))
    return 0


def cmd_status(args):
    code = OK
    ident, tree = store.current_version(args.data_root)
    tree = tree or layout.shared_dir(args.data_root)
    missing = [db.name for db in selected(args) if missing_files(tree, db)]
    age_days = (time.time() - os.path.getmtime(tree)) / 86400 if os.path.exists(tree) else float('nan')
    print('shared  %s: version %s, %s, %.1f days old%s' % (
        args.data_root, ident or 'unversioned', 'incomplete' if missing else 'complete', age_days,
        '; missing: ' + ', '.join(missing) if missing else ''))
    if missing:
        code = CRITICAL
    if args.local_root:
        chosen, reason = layout.choose_data_dir(args.data_root, args.local_root)
        fresh = chosen != layout.shared_dir(args.data_root)
        print('local   %s: %s' % (args.local_root, reason))
        if not fresh:
            code = max(code, WARNING)
    return code


def cmd_prune(args):
    store.prune(args.data_root, args.keep)
    return 0


def parser():
    site = site_config.load()
    p = argparse.ArgumentParser(prog='alphafold-data', description='AlphaFold databases: plan, verify, '
                                'publish, stage to node-local disk, warm, status, prune.')
    sub = p.add_subparsers(dest='command', required=True)
    commands = {'plan': cmd_plan, 'verify': cmd_verify, 'publish': cmd_publish, 'stage': cmd_stage,
                'warm': cmd_warm, 'status': cmd_status, 'prune': cmd_prune}
    for name, func in commands.items():
        s = sub.add_parser(name, help=(func.__doc__ or '').split('\n')[0])
        s.set_defaults(func=func)
        s.add_argument('--data-root', default=site['data']['shared_root'], help='shared copy (default: site config)')
        s.add_argument('--local-root', default=site['data']['local_root'] or None, help='node-local copy')
        s.add_argument('--mirror', default=site['data']['mirror'] or None, help='base URL of an https mirror')
        s.add_argument('--rsync-mirror', default=site['data'].get('rsync_mirror') or None, help='rsync mirror for mmCIF')
        s.add_argument('--databases', help='comma-separated subset, e.g. uniref90,mgnify')
        s.add_argument('--preset', default='full_dbs', choices=sorted(registry.DOWNLOAD_PRESETS))
        s.add_argument('--db-version', default='2.3', choices=sorted(registry.DATABASES),
                       help='AlphaFold database set (default: %(default)s)')
        if name == 'plan':
            s.add_argument('--show-urls', action='store_true', help='print every URL it would fetch')
        if name == 'publish':
            s.add_argument('--from', dest='source', required=True, help='unpacked tree to publish')
        if name == 'stage':
            s.add_argument('--jobs', type=int, default=4, help='databases copied in parallel')
        if name == 'prune':
            s.add_argument('--keep', type=int, default=2, help='versions to keep, current included')
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        sys.exit(args.func(args))
    except KitError as exc:
        print('alphafold-data %s: error: %s' % (args.command, exc), file=sys.stderr)
        sys.exit(exc.exit_code)
