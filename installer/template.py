"""The one template syntax of modulefiles/*.in and recipes/templates/*.in: @{name}."""
import string


class Template(string.Template):
    """string.Template whose only placeholder form is @{name}. Nothing else is special: Tcl's $
    and [ ], Lua's % patterns, the shell's "$@" and a git URL's .git@ref need no escaping."""
    delimiter = '@'
    # string.Template wants all four groups; only `braced` can match.
    pattern = r'''@(?:
        \{(?P<braced>[_a-z][_a-z0-9]*)\}
        | (?P<named>(?!)) | (?P<escaped>(?!)) | (?P<invalid>(?!))
    )'''


def render(path, values):
    """The template file at path filled in from values; a placeholder without a value is a
    KeyError (a template and its renderer out of step)."""
    with open(path, encoding='utf-8') as f:
        return Template(f.read()).substitute(values)
