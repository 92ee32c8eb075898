"""The Apptainer wrapper's bind table, rendered at install from fold_runtime/option_table.py: which
options name paths and how installer/wrapper.sh binds each into the image (as kit_common/commands.py
renders its command table), and which options make a command need the GPU (--nv)."""
import dataclasses

from fold_runtime import options
from fold_runtime.option_table import CACHE, DATA, INPUTS, MADE, OPTIONS, READ_WRITE

# What wrapper.sh's option() does with each role's path (its functions and arrays); a read-write
# directory with a default goes to a variable named after the option, bound after the defaults.
ACTIONS = {INPUTS: 'want_fasta "$2"', DATA: 'data_dirs+=("$2")', MADE: 'made+=("$2")'}
MODES = {INPUTS: 'ro', DATA: 'ro', READ_WRITE: 'rw', CACHE: 'rw'}   # bind modes of the paths a batch records
DEFAULTED = {READ_WRITE: 'want rw', CACHE: 'want_cache'}
BOUND = tuple(ACTIONS) + tuple(DEFAULTED)


def bound():
    return [o for o in OPTIONS if o.path in BOUND]


def spellings(opt):
    """The option's names as option() matches them: underscores read as dashes."""
    names = []
    for name in opt.names():
        if name.replace('_', '-') not in names:
            names.append(name.replace('_', '-'))
    return names


def option_arms():
    """The `case` arms of wrapper.sh's option() for the path options."""
    return '\n'.join('    %s) %s ;;' % ('|'.join(spellings(o)), ACTIONS.get(o.path) or '%s=$2' % o.dest)
                     for o in bound())


def list_options():
    """The path options that take several values: each value after the flag is a path."""
    return '|'.join(n for o in bound() if o.kwargs.get('nargs') == '+' for n in spellings(o))


def variables():
    """Those variables, empty until an option sets them."""
    return ' '.join("%s=''" % o.dest for o in bound() if o.path in DEFAULTED)


def defaulted():
    """The read-write directories whose default is an environment variable, else the site config:
    bound as the runtime resolves them (the option, else the variable, else site_value)."""
    return '\n'.join('  %s "${%s:-${%s:-$(site_value %s %s)}}"' % ((DEFAULTED[o.path], o.dest, o.env) + o.site)
                     for o in bound() if o.path in DEFAULTED)


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
            'path_defaults': defaulted(), 'recorded': recorded(), 'data_env': data_env(),
            'gpu_options': gpu_options(), 'gpu_fields': gpu_fields()}
