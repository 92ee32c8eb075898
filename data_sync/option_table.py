"""alphafold-data's command-line options, each declared once: flag, help and argparse keywords,
the subcommands that take it, the site-config key that applies when it is left out, and what the
Apptainer wrapper binds for it (installer/wrapper_binds.py renders the wrapper's arms from this
table, as it does from fold_runtime/option_table.py's)."""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from data_sync import registry, shard

# What the wrapper binds: a data root the command may create (it, else its nearest existing parent,
# read-write; the site config's root when the option is left out), a tree it reads or writes, a
# file it appends to (its directory).
ROOT, TREE, LOG = 'root', 'tree', 'log'


@dataclass(frozen=True)
class Option:
    flag: str
    help: Optional[str] = None
    commands: Optional[Tuple[str, ...]] = None   # None: every subcommand
    kwargs: Dict[str, Any] = field(default_factory=dict)
    site: Optional[Tuple[str, str]] = None       # (section, key) of the site config
    path: Optional[str] = None

    @property
    def dest(self):
        return self.kwargs.get('dest') or self.flag[2:].replace('-', '_')

    def names(self):
        return [self.flag]


OPTIONS = (
    Option('--data-root', "shared copy (default: the site config's shared_root)", site=('data', 'shared_root'),
           path=ROOT),
    Option('--local-root', "node-local copy (default: the site config's local_root)", site=('data', 'local_root'),
           path=ROOT),
    Option('--mirror', 'base URL of an https mirror (default: the site config)', site=('data', 'mirror')),
    Option('--rsync-mirror', 'rsync mirror for mmCIF (default: the site config)', site=('data', 'rsync_mirror')),
    Option('--databases', 'comma-separated subset, e.g. uniref90,mgnify'),
    Option('--preset', kwargs=dict(default=registry.FULL_DBS, choices=sorted(registry.DOWNLOAD_PRESETS))),
    Option('--db-version', 'AlphaFold database set (default: %(default)s)',
           kwargs=dict(default='2.3', choices=sorted(registry.DATABASES))),
    Option('--show-urls', 'print every URL it would fetch', ('plan',), dict(action='store_true')),
    Option('--from', 'unpacked tree to publish (default: DATA_ROOT/.incoming); it is copied in (hard links where '
           'possible) and left as it is', ('publish',), dict(dest='source'), path=TREE),
    Option('--move', 'with --from: move the tree in instead of copying it (across file systems: copied, then '
           'removed once published)', ('publish',), dict(action='store_true')),
    Option('--downloader', 'auto: aria2c when installed, else requests', ('download', 'sync'),
           dict(choices=('auto', 'aria2c', 'requests'), default='auto')),
    Option('--verify', 'how to check databases kept from the current version (full: SHA-256)', ('download', 'sync'),
           dict(choices=('size', 'full'), default='size')),
    Option('--gpu-dbs', "ColabFold's databases (--preset mmseqs2) padded for MMseqs2-GPU (alphafold-msa --gpu), as "
           "setup_databases.sh's GPU=1 makes them (default: the site config's [data] gpu_dbs, else not); a change "
           'of it fetches and prepares them again', ('download', 'sync'), dict(action='store_true', default=None),
           site=('data', 'gpu_dbs')),
    Option('--quiet', 'print nothing on success (for cron)', kwargs=dict(action='store_true')),
    Option('--log-file', 'append a log here (sync default: DATA_ROOT/sync.log)', path=LOG),
    Option('--shards', 'shards per database (1: unsharded); without --databases, the shardable ones of --preset '
           '(%s)' % ', '.join(shard.SHARDABLE), ('shard',), dict(type=int, required=True)),
    Option('--jobs', 'databases copied in parallel', ('stage',), dict(type=int, default=4)),
    Option('--keep', 'versions to keep, current included', ('prune',), dict(type=int, default=2)),
)


def add_options(parser, command):
    """The options of one subcommand."""
    for opt in OPTIONS:
        if opt.commands is None or command in opt.commands:
            parser.add_argument(*opt.names(), help=opt.help, **opt.kwargs)
