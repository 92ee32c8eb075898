"""Typed settings: dataclasses filled from text (the site config) or from JSON (a batch's stored
options), every value checked against its field's type. A wrong key or value is a KitError that
names where it came from, never a silent default."""
import dataclasses
import math
import typing

from kit_common.errors import EXIT_INPUT, KitError

_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('0', 'false', 'no', 'off')


def _describe(tp):
    return getattr(tp, '__name__', None) or str(tp).replace('typing.', '')


def _value(tp, value, from_text, where='', fix=''):
    """value converted to tp; raises ValueError with a description of the expected type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):                # a nested section, e.g. a batch's Slurm settings
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ValueError('a mapping')
        return build(tp, value, where, fix, from_text)
    if origin is typing.Union:                      # Optional[X]
        inner = [a for a in args if a is not type(None)][0]
        if value is None or (from_text and value == ''):
            return None
        return _value(inner, value, from_text, where, fix)
    if origin in (tuple, typing.Tuple):             # Tuple[int, ...]
        items = [x.strip() for x in value.split(',') if x.strip()] if from_text else value
        if not isinstance(items, (list, tuple)):
            raise ValueError('a list')
        return tuple(_value(args[0], x, from_text) for x in items)
    if origin in (dict, typing.Dict):
        if not isinstance(value, dict):
            raise ValueError('a mapping')
        return {_value(args[0], k, from_text): _value(args[1], v, from_text) for k, v in value.items()}
    if tp is bool:
        if from_text and str(value).lower() in _TRUE + _FALSE:
            return str(value).lower() in _TRUE
        if isinstance(value, bool):
            return value
        raise ValueError('true or false')
    if tp in (int, float):
        if isinstance(value, bool):
            raise ValueError('a number')
        if from_text or isinstance(value, (int, float)):
            try:
                converted = tp(value)
            except (TypeError, ValueError):
                raise ValueError('an integer' if tp is int else 'a number')
            if tp is int and not from_text and converted != value:
                raise ValueError('an integer')
            if not math.isfinite(converted):   # nan passes every comparison's "else": no limit would hold
                raise ValueError('a finite number')
            return converted
        raise ValueError('an integer' if tp is int else 'a number')
    if tp is str:
        if not isinstance(value, str):
            raise ValueError('text')
        if '\n' in value or '\r' in value:
            raise ValueError('one line of text')
        control = sorted({c for c in value if (ord(c) < 32 and c != '\t') or ord(c) == 127})
        if control:   # a pasted terminal colour code, say: no path or name holds one
            raise ValueError('text without control characters (it holds %s)' % ', '.join(repr(c) for c in control))
        return value
    raise TypeError('unsupported field type %s' % _describe(tp))


def build(cls, values, where, fix, from_text=False):
    """cls(**values) with every value converted and checked; unknown keys are refused."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise KitError('%s: unknown setting(s) %s' % (where, ', '.join(unknown)),
                       '%s; known: %s' % (fix, ', '.join(sorted(fields))), EXIT_INPUT)
    kwargs = {}
    for name, value in values.items():
        try:
            kwargs[name] = _value(hints[name], value, from_text, '%s %s' % (where, name), fix)
        except ValueError as exc:
            raise KitError('%s: %s = %r is not %s' % (where, name, value, exc), fix, EXIT_INPUT)
    obj = cls(**kwargs)
    check = getattr(obj, 'check', None)
    if check:
        problem = check()
        if problem:
            raise KitError('%s: %s' % (where, problem), fix, EXIT_INPUT)
    return obj


def to_dict(obj):
    """The JSON form of a settings dataclass (tuples as lists)."""
    return dataclasses.asdict(obj)
