"""The one config loader: YAML file + ``key=value`` overrides -> a (nested) dataclass, type-checked.

Used by ``skillmix-train`` (``training/config.py``) and ``skillmix-pipeline`` (``pipeline/config.py``).
Every error is a :class:`ConfigError` (or the caller's subclass) whose message starts with the field
(``eval.limit: ...``, ``students[0].model: ...``, ``learning_rate: ...``) or with ``file:line``.

Types understood (from the dataclass annotations): ``bool``, ``int``, ``float`` (finite only), ``str``,
``X | None``, ``list[X]``, ``dict[str, X]``, ``Any``, nested dataclasses and lists of them. A string
given for a list is split at commas, or shell-like when the field's metadata says ``{"split": "shell"}``
(command lines). An optional dataclass section also takes ``true`` (its defaults) and ``false`` (off).
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

T = TypeVar("T")
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message starts with the field name (or file:line)."""


def read_yaml(path: str | Path, error: type[ConfigError] = ConfigError, what: str = "config") -> dict[str, Any]:
    """A YAML mapping from ``path``; a missing file, bad YAML (with its line) or a non-mapping is ``error``."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read the {what} file ({e})") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = " ".join(str(p) for p in (getattr(e, "context", None), getattr(e, "problem", None)) if p) or str(e)
        raise error(f"{where}: not valid YAML ({problem})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise error(f"{path}: expected a mapping of field: value, got {type(values).__name__}")
    return values


def apply_overrides(values: dict[str, Any], overrides: list[str] | None,
                    error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """``key=value`` items (YAML syntax for the value; ``a.b=1`` sets field b of section a) into ``values``."""
    import yaml

    for item in overrides or []:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise error(f"{item!r}: overrides are key=value (section.field=value sets a field of a section)")
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError as e:
            raise error(f"{key}: the value {raw!r} is not valid YAML ({getattr(e, 'problem', e)})") from None
        parts, node = key.split("."), values
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None or child is True:  # `lora: true` then `lora.r=8`: the section with one change
                child = node[part] = {}
            if not isinstance(child, dict):
                raise error(f"{'.'.join(parts[:i + 1])}: is not a section, cannot set {key}")
            node = child
        node[parts[-1]] = value
    return values


def build(cls: type[T], values: Any, where: str = "", error: type[ConfigError] = ConfigError) -> T:
    """An instance of dataclass ``cls`` from a mapping, every key known and every value of its type."""
    if not isinstance(values, dict):
        raise error(f"{where or 'config'}: expected a mapping of field: value, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in values.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise error(f"{name}: unknown field (known: {', '.join(fields)})")
        kwargs[key] = coerce(name, value, hints[key], error, fields[key].metadata)
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise error(f"{where + '.' if where else ''}{missing[0]}: required")
    return cls(**kwargs)


def coerce(name: str, value: Any, hint: Any, error: type[ConfigError] = ConfigError,
           metadata: typing.Mapping[str, Any] | None = None) -> Any:
    """``value`` as type ``hint``, or ``error`` naming ``name``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None and len(inner) < len(args):
            return None
        if len(inner) != 1:
            raise AssertionError(f"{name}: unsupported type {hint}")
        if dataclasses.is_dataclass(inner[0]) and isinstance(value, bool):
            return inner[0]() if value else None  # `section: true` = its defaults, `false` = off
        return coerce(name, value, inner[0], error, metadata)
    if value is None:
        raise error(f"{name}: may not be null")
    if dataclasses.is_dataclass(hint):
        return build(hint, value, name, error)
    if origin is list:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            value = shlex.split(text) if (metadata or {}).get("split") == "shell" else \
                [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, list):
            raise error(f"{name}: expected a list, got {value!r}")
        return [coerce(f"{name}[{i}]", v, args[0] if args else Any, error) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise error(f"{name}: expected a mapping, got {value!r}")
        inner = args[1] if len(args) == 2 else Any
        return {str(k): coerce(f"{name}.{k}", v, inner, error) for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in TRUE + FALSE:
            return str(value).strip().lower() in TRUE
        raise error(f"{name}: expected a boolean (true or false), got {value!r}")
    if hint is int:
        try:
            if isinstance(value, (bool, list, dict)) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            raise error(f"{name}: expected an integer, got {value!r}") from None
    if hint is float:
        try:
            if isinstance(value, (bool, list, dict)):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise error(f"{name}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise error(f"{name}: must be a finite number, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, (dict, list)):
            raise error(f"{name}: expected a string, got {value!r}")
        return str(value)
    raise AssertionError(f"{name}: unsupported type {hint}")  # a field type this loader does not know
