"""The one site configuration file, parsed and validated once into typed sections.

The installer copies it to PREFIX/<version>/<variant>/etc/site.conf; the modulefile (and the
wrapper) export ALPHAFOLD_SITE_CONFIG, and every command reads it from there when it starts
(kit_common.entry.main), so an edit after install applies to the next command. Each setting is
resolve()d: command line > environment > site config > default.
An unknown section or key, a value of the wrong type and an unreadable file are KitErrors that
name the file, the key and the fix. installer/site.conf.example documents every key.
"""
import configparser
import os
import re
from dataclasses import dataclass, field
from typing import Optional, Tuple

from kit_common import typed
from kit_common.errors import EXIT_INPUT, KitError

ENV_VAR = 'ALPHAFOLD_SITE_CONFIG'
MEMORY_MODES = ('auto', 'default', 'unified')
FIX = 'edit the site config (see installer/site.conf.example for every key and its type)'


@dataclass(frozen=True)
class Data:
    shared_root: str = '/shared/alphafold'
    local_root: str = ''
    mirror: str = ''
    rsync_mirror: str = ''
    gpu_dbs: bool = False   # alphafold-data --gpu-dbs


@dataclass(frozen=True)
class Memory:
    mode: str = 'auto'
    unified_threshold: int = 1200
    mem_fraction: Optional[float] = None

    def check(self):
        return memory_problem(self.mode, self.unified_threshold, self.mem_fraction, 'mode =')


def memory_problem(mode, unified_threshold, mem_fraction, mode_words):
    """What is wrong with memory settings, or None: one check for the site config's [memory] and the
    GPU stage's options (mode_words names the mode as each one's message does)."""
    if mode not in MEMORY_MODES:
        return '%s %r is not one of %s' % (mode_words, mode, ', '.join(MEMORY_MODES))
    if unified_threshold < 1:
        return 'unified_threshold must be at least 1, got %d' % unified_threshold
    if mem_fraction is not None and not 0 < mem_fraction <= 64:
        return 'mem_fraction must be above 0 and at most 64, got %g' % mem_fraction
    return None


# sbatch's own forms, so a typo fails here, not as "Invalid time limit" at submit.
SLURM_TIME = r'(\d+-)?\d+(:\d+){0,2}|(?i:infinite|unlimited)'
TIME_FORM = "a Slurm time limit: minutes, H:MM:SS, D-HH, D-HH:MM:SS (e.g. 12:00:00), or 'infinite'"
SLURM_MEM = r'\d+[KMGTkmgt]?'
MEM_FORM = 'a Slurm memory size: a whole number with K, M, G or T (e.g. 64G); no unit means megabytes'
# Upper bounds that no cluster reaches, so a slip of the keyboard (10^23) is caught.
COUNT_LIMITS = {'cpus_per_task': 10000, 'gpu_cpus_per_task': 10000, 'max_concurrent_msa': 100000,
                'gpu_workers': 10000}


@dataclass(frozen=True)
class Slurm:
    cpu_partition: str = 'cpu'
    gpu_partition: str = 'gpu'
    account: str = ''
    qos: str = ''
    cpus_per_task: int = 20
    cpu_time: str = '12:00:00'
    gpu_time: str = '12:00:00'
    cpu_mem: str = '64G'
    gpu_mem: str = '64G'
    max_concurrent_msa: int = 20
    extra_sbatch: str = ''
    gpu_cpus_per_task: int = 8
    gpu_workers: int = 4

    def check(self):
        for key, most in COUNT_LIMITS.items():
            if not 1 <= getattr(self, key) <= most:
                return '%s must be at least 1 and at most %d, got %d' % (key, most, getattr(self, key))
        for key, pattern, form in (('cpu_time', SLURM_TIME, TIME_FORM), ('gpu_time', SLURM_TIME, TIME_FORM),
                                   ('cpu_mem', SLURM_MEM, MEM_FORM), ('gpu_mem', SLURM_MEM, MEM_FORM)):
            if not re.fullmatch(pattern, getattr(self, key)):
                return '%s = %r is not %s' % (key, getattr(self, key), form)
        return None


def length_edges(text):
    """Length-bucket edges: '' -> None (the kit's default list), 'none'/'off' -> () (no
    padding), '64,128,256' -> (64, 128, 256). Raises ValueError on anything else."""
    if text is None or not text.strip():
        return None
    if text.strip().lower() in ('none', 'off'):
        return ()
    fields = [x.strip() for x in text.split(',') if x.strip()]
    if not fields or not all(x.isdigit() and int(x) > 0 for x in fields):
        raise ValueError('positive residue counts separated by commas, e.g. 64,128,256, or none')
    return tuple(sorted({int(x) for x in fields}))


@dataclass(frozen=True)
class Batch:
    length_buckets: str = ''
    relax_workers: int = 1
    relax_on_gpu: bool = False

    def check(self):
        if not 0 <= self.relax_workers <= COUNT_LIMITS['gpu_cpus_per_task']:
            return 'relax_workers must be at least 0 (relax inline) and at most %d, got %d' % (
                COUNT_LIMITS['gpu_cpus_per_task'], self.relax_workers)
        try:
            length_edges(self.length_buckets)
        except ValueError as exc:
            return 'length_buckets = %r: give %s' % (self.length_buckets, exc)
        return None

    @property
    def edges(self) -> Optional[Tuple[int, ...]]:
        return length_edges(self.length_buckets)


@dataclass(frozen=True)
class Cache:
    feature_cache: str = ''
    jax_cache: str = ''


SECTIONS = {'data': Data, 'memory': Memory, 'slurm': Slurm, 'batch': Batch, 'cache': Cache}


@dataclass(frozen=True)
class SiteConfig:
    path: Optional[str] = None
    data: Data = field(default_factory=Data)
    memory: Memory = field(default_factory=Memory)
    slurm: Slurm = field(default_factory=Slurm)
    batch: Batch = field(default_factory=Batch)
    cache: Cache = field(default_factory=Cache)


def path_from_env():
    return os.environ.get(ENV_VAR) or None


_CURRENT = {}


def current():
    """This process's site config ($ALPHAFOLD_SITE_CONFIG, else the defaults), read once."""
    path = path_from_env()
    if path not in _CURRENT:
        _CURRENT[path] = load(path)
    return _CURRENT[path]


def env_value(var, kind=str, choices=()):
    """A kit variable's value (None when unset or empty), checked like the option it stands for."""
    text = os.environ.get(var) if var else None
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or (choices and value not in choices):
        form = ('one of ' + ', '.join(choices)) if choices else 'an integer' if kind is int else 'a number'
        raise KitError('%s=%r is not %s' % (var, text, form), 'fix or unset %s' % var, EXIT_INPUT)
    return value


def resolve(given, var, site_value, default=None, kind=str, choices=()):
    """A setting by the kit's one precedence: command line (given) > environment ($var) > site
    config > default. site_value may be a function, asked only when the first two are unset."""
    for value in (given, lambda: env_value(var, kind, choices), site_value):
        value = value() if callable(value) else value
        if value not in (None, ''):
            return value
    return default


def load(path=None):
    """The site config from path, else $ALPHAFOLD_SITE_CONFIG, else the defaults alone."""
    path = path or path_from_env()
    if not path:
        return SiteConfig()
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    try:
        with open(path) as f:
            parser.read_file(f)
    except OSError as exc:
        raise KitError('cannot read the site config %s: %s' % (path, exc.strerror),
                       'fix the path in %s (or unset it to use the defaults)' % ENV_VAR
                       if path == path_from_env() else 'give a readable site config file', EXIT_INPUT)
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise KitError('the site config %s is malformed: %s' % (path, str(exc).splitlines()[0]), FIX, EXIT_INPUT)
    unknown = [s for s in parser.sections() if s not in SECTIONS]
    if unknown:
        raise KitError('site config %s: unknown section(s) [%s]' % (path, '], ['.join(unknown)),
                       '%s; known sections: %s' % (FIX, ', '.join(SECTIONS)), EXIT_INPUT)
    sections = {name: typed.build(cls, dict(parser[name]) if parser.has_section(name) else {},
                                  'site config %s [%s]' % (path, name), FIX, from_text=True)
                for name, cls in SECTIONS.items()}
    return SiteConfig(path=os.path.abspath(path), **sections)
