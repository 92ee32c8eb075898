"""The Apptainer wrapper's option table, rendered at install from fold_runtime/option_table.py (the
stages' and alphafold-batch's options) and data_sync/option_table.py (alphafold-data's): which
options name paths and how installer/wrapper.sh binds each into the image, and which values it
keeps, and which options make a command need the GPU (--nv) (as kit_common/commands.py renders
its command table)."""
import dataclasses

from data_sync import option_table as data_table
from fold_runtime import options
from fold_runtime.option_table import BATCH_OPTIONS, CACHE, DATA, INPUTS, KEPT, MADE, OPTIONS, READ_WRITE, SLURM

# What wrapper.sh's option() does with each role's path (its functions and arrays); a read-write
# directory with a default, a data root and a kept value go to a variable named after the option,
# bound after the defaults (bind_default: the option, else the variable, else the site config).
ACTIONS = {INPUTS: 'want_fasta "$2"', DATA: 'data_dirs+=("$2")', MADE: 'made+=("$2")',
           data_table.TREE: 'want rw "$2"', data_table.LOG: 'want rw "$(dirname -- "$(absolute "$2")")"'}
MODES = {INPUTS: 'ro', DATA: 'ro', READ_WRITE: 'rw', CACHE: 'rw'}   # bind modes of the paths a batch records
DEFAULTED = {READ_WRITE: 'want_rw', CACHE: 'want_cache', data_table.ROOT: 'want_nearest'}
BOUND = tuple(ACTIONS) + tuple(DEFAULTED) + (KEPT,)


def bound():
    """The options the wrapper looks at: stage and batch options first, then alphafold-data's."""
    return [o for o in OPTIONS + BATCH_OPTIONS + data_table.OPTIONS if o.path in BOUND]


def spellings(opt):
    """The option's names as option() matches them: underscores read as dashes."""
    names = []
    for name in opt.names():
        if name.replace('_', '-') not in names:
            names.append(name.replace('_', '-'))
    return names


def option_arms():
    """The `case` arms of wrapper.sh's option(); a spelling declared twice would shadow the other."""
    arms = [(spellings(o), ACTIONS.get(o.path) or '%s=$2' % o.dest) for o in bound()]
    every = [name for names, _ in arms for name in names]
    if len(every) != len(set(every)):
        raise ValueError('option spellings declared twice: %s' % sorted({n for n in every if every.count(n) > 1}))
    return '\n'.join('    %s) %s ;;' % ('|'.join(names), action) for names, action in arms)


def list_options():
    """The path options that take several values: each value after the flag is a path."""
    return '|'.join(n for o in bound() if o.kwargs.get('nargs') == '+' for n in spellings(o))


def variables():
    """Those variables, empty until an option sets them."""
    return ' '.join("%s=''" % o.dest for o in bound() if o.path in DEFAULTED or o.path == KEPT)


def defaults(table, indent):
    """The directories of table's options whose default is the site config (after an environment
    variable, if any): bound as the runtime resolves them."""
    lines = []
    for o in table:
        if o.path in DEFAULTED:
            given = '${%s:-${%s:-}}' % (o.dest, o.env) if getattr(o, 'env', None) else '$' + o.dest
            lines.append('%sbind_default %s "%s" %s %s' % ((indent, DEFAULTED[o.path], given) + o.site))
    return '\n'.join(lines)


def recorded():
    """(mode, part, field) of each path a batch records in batch.json, as a Python tuple."""
    parts = (('cpu_options', options.CpuStageOptions), ('gpu_options', options.GpuStageOptions))
    return ', '.join('("%s", "%s", "%s")' % (MODES[o.path], part, o.field)
                     for o in bound() if o.path in MODES and o.field
                     for part, cls in parts if o.field in {f.name for f in dataclasses.fields(cls)})


def gpu_options():
    """The options that, given, make their command need the GPU (wrapper.sh: --nv), as a case pattern."""
    return '|'.join(n for o in OPTIONS if o.needs_gpu for n in spellings(o))


def gpu_fields():
    """The same options' fields, as a batch records them: a batch's msa-task with one true needs the GPU."""
    return '|'.join(o.field for o in OPTIONS if o.needs_gpu)


def data_env():
    """The environment variable that names the data directory when no option does."""
    return next(o.env for o in OPTIONS if o.path == DATA)


def values():
    """The placeholders of wrapper.sh that this table fills."""
    return {'path_options': option_arms(), 'list_options': list_options(), 'path_variables': variables(),
            'path_defaults': defaults(OPTIONS, '  '), 'data_roots': defaults(data_table.OPTIONS, '  '),
            'recorded': recorded(), 'data_env': data_env(), 'slurm': SLURM,
            'gpu_options': gpu_options(), 'gpu_fields': gpu_fields()}
