"""alphafold-data (python -m data_sync): plan, download, verify, publish, sync, shard, stage, warm,
status, prune."""
import argparse
import contextlib
import glob
import logging
import os
import shutil
import subprocess
import sys
import time

from data_sync import layout, manifest, option_table, registry, shard, space, stage as staging, store, sync
from kit_common import entry, files, locks, site_config
from kit_common.errors import EXIT_FAILED, EXIT_MISMATCH, EXIT_MISSING, EXIT_OK, KitError, exit_help

log = logging.getLogger(__name__)

# `status` for monitoring: a database missing from the shared copy, else a node-local copy jobs
# cannot use (they read the shared one).
STATUS_EXITS = (EXIT_OK, EXIT_FAILED, EXIT_MISSING)


def selected(args):
    names = registry.DOWNLOAD_PRESETS[args.preset]
    if args.databases:
        wanted = [n.strip() for n in args.databases.split(',') if n.strip()]
        known = registry.DATABASES[args.db_version]
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise KitError('unknown database(s): %s' % ', '.join(unknown), 'choose from %s' % ', '.join(sorted(known)))
        names = wanted
    table = registry.DATABASES[args.db_version]
    together = sync.with_siblings(names, table.values())   # the databases of a shared folder come together
    return [table[n] for n in list(names) + sorted(together - set(names)) if n in table]


def missing_files(tree, db):
    return [rel for rel in db.required if not os.path.exists(os.path.join(tree, rel))]


def cmd_plan(args):
    """What is missing, and whether it fits: the shared copy needs downloads plus unpacked trees,
    the node-local copy (with --local-root) the unpacked trees it lacks."""
    tree = layout.shared_dir(args.data_root)
    local = os.path.join(args.local_root, 'current') if args.local_root else None
    needs = {args.data_root: 0}
    if local:
        needs[args.local_root] = 0
    for db in selected(args):
        missing = missing_files(tree, db)
        state = 'missing %d of %d files' % (len(missing), len(db.required)) if missing else 'present'
        print('%-12s %-26s download %7.1f GB, unpacked %7.1f GB' % (db.name, state, db.download_bytes / 1e9,
                                                                   db.unpacked_bytes / 1e9))
        if args.show_urls:
            for src in db.sources:
                print('    %s' % registry.mirrored(src.url, args.rsync_mirror if src.archive == 'rsync' else args.mirror))
        if missing:
            needs[args.data_root] += db.download_bytes + db.unpacked_bytes
        if local and missing_files(local, db):
            needs[args.local_root] += db.unpacked_bytes
    space.check(needs)
    return 0


@contextlib.contextmanager
def shared_lock(args, wait=True):
    """The data root's lock, held by every command that changes the shared tree."""
    files.make_dirs(args.data_root)
    with locks.exclusive(args.data_root, 'alphafold-data %s' % args.command, wait=wait):
        yield


def cmd_verify(args):
    ident, tree = store.current_version(args.data_root)
    wanted = manifest.load(tree) if tree else None
    if wanted is None:
        raise KitError('no published version with a manifest under %s' % args.data_root,
                       'run alphafold-data publish (or sync) first', EXIT_MISMATCH)
    found = list(manifest.problems(tree, wanted, databases={db.name for db in selected(args)} if args.databases else None))
    for p in manifest.describe(found):
        print('BAD  %s' % p)
    if found:
        damaged = sorted({rel.split('/', 1)[0] for rel, _ in found})
        raise KitError('%d file(s) of version %s do not match its manifest' % (len(found), ident),
                       'alphafold-data sync --verify full --data-root %s --db-version %s --databases %s fetches '
                       'them again (a plain sync checks sizes only)' % (args.data_root, args.db_version,
                                                                          ','.join(damaged)), EXIT_MISMATCH)
    print('version %s verified: %d files' % (ident, len(wanted['files'])))
    return 0


def cmd_download(args):
    """Download and unpack into DATA_ROOT/.incoming (resumable); `publish` then makes it current."""
    with shared_lock(args):
        sync.download(args.data_root, selected(args), args.mirror, args.rsync_mirror, args.downloader, args.verify,
                      args.quiet, args.gpu_dbs)
    return 0


def cmd_publish(args):
    """Publish a complete unpacked tree (DATA_ROOT/.incoming, or a copy of --from DIR) as the current version."""
    incoming = os.path.join(args.data_root, sync.INCOMING)
    source = os.path.abspath(args.source) if args.source else incoming
    if args.move and not args.source:
        raise KitError('--move needs --from DIR', 'give the tree to move with --from')
    with shared_lock(args):
        incomplete = {db.name: missing_files(source, db) for db in selected(args) if missing_files(source, db)}
        if incomplete:
            raise KitError('%s is incomplete: %s' % (source, '; '.join('%s misses %s' % (k, ', '.join(v[:3]))
                                                                         for k, v in incomplete.items())),
                           'download the missing databases first; `current` was not changed', EXIT_MISMATCH)
        if source == incoming:
            sync.publish(args.data_root, incoming, default_fetched=['(from %s)' % incoming])
        else:
            sync.publish_from(args.data_root, source, move=args.move)
    return 0


def cmd_sync(args):
    """download, verify, publish: the cron entry point (locked; --quiet prints only failures)."""
    try:
        with shared_lock(args, wait=False):
            sync.download(args.data_root, selected(args), args.mirror, args.rsync_mirror, args.downloader,
                          args.verify, args.quiet, args.gpu_dbs)
            sync.publish(args.data_root, os.path.join(args.data_root, sync.INCOMING))
    except locks.Busy as exc:
        log.info('another %s; exiting', exc)      # cron's next run will do it
    return 0


def cmd_shard(args):
    """Split the FASTA databases jackhmmer reads into --shards N (1: unsharded) and publish that as a new version."""
    wanted = selected(args) if args.databases else [db for db in selected(args) if db.name in shard.SHARDABLE]
    with shared_lock(args):
        shard.publish_sharded(args.data_root, shard.check_databases(wanted), args.shards)
    return 0


def cmd_stage(args):
    if not args.local_root:
        raise KitError('no node-local root', 'pass --local-root DIR or set local_root in the site config')
    staging.stage(args.data_root, args.local_root, jobs=args.jobs)
    return 0


def cmd_warm(args):
    """The paper's 'memory persistence': HHblits' prefilter and index files into the page cache
    (--preset mmseqs2: and ColabFold's databases, which MMseqs2 reads whole)."""
    tree = layout.choose_data_dir(args.data_root, args.local_root)[0]
    files = sorted(glob.glob(os.path.join(tree, '*', '*_cs219.ffdata')) + glob.glob(os.path.join(tree, '*', '*.ffindex')))
    if args.preset == registry.MMSEQS2:
        files += _colabfold_files(tree)
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


def _colabfold_files(tree):
    """Every file of ColabFold's databases (their aliases, links, once: as their targets)."""
    found = []
    for db in registry.COLABFOLD.values():
        for prefix in db.paths.values():
            found += [p for p in glob.glob(os.path.join(tree, glob.escape(prefix)) + '*')
                      if os.path.isfile(p) and not os.path.islink(p)]
    return sorted(found)


def cmd_status(args):
    """Is the shared copy complete, and is this node's copy the one jobs read? (for monitoring)"""
    code = EXIT_OK
    ident, tree = store.current_version(args.data_root)
    recorded = manifest.load(tree) if tree else None
    tree = tree or layout.shared_dir(args.data_root)
    missing = [db.name for db in selected(args) if missing_files(tree, db)]
    state = 'incomplete' if missing else 'complete'
    if recorded:
        size = sum(f['size'] for f in recorded['files'].values()) / 1e9
        age_days = (time.time() - os.path.getmtime(tree)) / 86400
        what = 'version %s, %s, %.2f GB, %.1f days old' % (ident, state, size, age_days)
    else:
        what = 'no published version, %s' % state
    print('shared  %s: %s%s' % (args.data_root, what, '; missing: ' + ', '.join(missing) if missing else ''))
    if missing:
        code = EXIT_MISSING
    if args.local_root:
        chosen, reason = layout.choose_data_dir(args.data_root, args.local_root)
        fresh = chosen != layout.shared_dir(args.data_root)
        print('local   %s: %s' % (args.local_root, reason))
        if not fresh and not missing:
            code = EXIT_FAILED
    return code


def cmd_prune(args):
    """Remove old versions of the shared copy (never current, never one a stage reads)."""
    with shared_lock(args):
        store.prune(args.data_root, args.keep)
    return 0


COMMANDS = {'plan': cmd_plan, 'download': cmd_download, 'verify': cmd_verify, 'publish': cmd_publish,
            'sync': cmd_sync, 'shard': cmd_shard, 'stage': cmd_stage, 'warm': cmd_warm, 'status': cmd_status,
            'prune': cmd_prune}


LOCKS_HELP = ('locks: download, publish, sync, shard and prune hold DATA_ROOT/.lock, stage holds LOCAL_ROOT/.lock; '
              'a second one waits for the first, except sync, which exits 0 (cron runs it again)')


def parser():
    """The command line; site-config defaults are filled in after parsing (fill_defaults), so
    --help works whatever the site config holds."""
    p = argparse.ArgumentParser(allow_abbrev=False, prog='alphafold-data', description='AlphaFold databases: plan, verify, '
                                'publish, stage to node-local disk, warm, status, prune.', epilog=LOCKS_HELP)
    sub = p.add_subparsers(dest='command', required=True)
    for name, func in COMMANDS.items():
        s = sub.add_parser(name, allow_abbrev=False, help=(func.__doc__ or '').split('\n')[0],
                           epilog=LOCKS_HELP + ('; ' + exit_help(STATUS_EXITS) if name == 'status' else ''))
        s.set_defaults(func=func)
        option_table.add_options(s, name)
    return p


def fill_defaults(args):
    site = site_config.current()
    for opt in option_table.OPTIONS:
        if opt.site and hasattr(args, opt.dest):   # --gpu-dbs: download and sync only
            setattr(args, opt.dest, site_config.resolve(getattr(args, opt.dest), None,
                                                        getattr(getattr(site, opt.site[0]), opt.site[1])))
    if not args.data_root:
        raise KitError('no data root', 'pass --data-root DIR or set shared_root in the site config')


def run(argv):
    args = parser().parse_args(argv)
    fill_defaults(args)
    log_file = args.log_file or (os.path.join(args.data_root, 'sync.log') if args.command == 'sync' else None)
    if log_file:
        files.make_dirs(os.path.dirname(os.path.abspath(log_file)))
    # Progress on stdout (cron mails it unless --quiet), errors on stderr, both in the log file.
    entry.setup_logging(sys.stdout, log_file, args.quiet)
    return args.func(args)


def main(argv=None):
    entry.main(run, argv, 'alphafold-data')
