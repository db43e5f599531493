"""Frozen dataclass configs: strict JSON round trip and named presets.

Every model and training run is described by a frozen dataclass that subclasses :class:`Config`.
Loading is strict: an unknown key or a value of the wrong type is an error that names the key, so a
typo in a config file never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from dalle.utils.io import atomic_write_text

C = TypeVar("C", bound="Config")
T = TypeVar("T")


class ConfigError(ValueError):
    """A config dict or file does not match its dataclass."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it in canonical form."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: {value!r} does not match {_type_name(tp)}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {list(get_args(tp))}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
        return tuple(
            _convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected an object for {tp.__name__}, got {value!r}")
        return _from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {type(value).__name__} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported annotation {_type_name(tp)}")


def _from_dict(cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) for {cls.__name__}: {', '.join(prefix + k for k in unknown)} "
            f"(known: {', '.join(sorted(fields))})"
        )
    kwargs = {name: _convert(value, hints[name], prefix + name) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{cls.__name__}: {e}") from None


def _to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    return value


def dict_changes(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The keys whose values differ between two config dicts, ``"name a -> b, ..."``."""
    return ", ".join(
        f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in {**a, **b} if a.get(k) != b.get(k)
    )


class Config:
    """Mixin for frozen dataclass configs (``@dataclass(frozen=True) class X(Config)``)."""

    presets: ClassVar[dict[str, Any]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.presets = {}

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(self)

    def require(
        self, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
        fractions: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        """A ConfigError naming the first field out of its range: ``positive`` ones above 0,
        ``non_negative`` ones at least 0, ``fractions`` in [0, 1). Called by a config's
        ``__post_init__``, so that nonsense fails when the config is made, not deep in a
        forward pass."""
        for names, ok, what in (
            (positive, lambda v: v > 0, "above 0"), (non_negative, lambda v: v >= 0, "at least 0"),
            (fractions, lambda v: 0 <= v < 1, "in [0, 1)"),
        ):  # fmt: skip
            for name in names:
                value = getattr(self, name)
                if not ok(value):
                    raise ConfigError(f"{type(self).__name__}.{name} must be {what}, got {value!r}")

    def changes(self, other: Any) -> str:
        """What differs from ``other``, as ``"name old -> new, ..."`` (for error messages)."""
        if other is None or type(other) is not type(self):
            return f"{type(self).__name__} -> {type(other).__name__}"
        return dict_changes(self.to_dict(), other.to_dict())

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        return _from_dict(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{cls.__name__}: invalid JSON: {e}") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls: type[C], path: str | os.PathLike) -> C:
        try:
            with open(path, encoding="utf-8") as f:
                return cls.from_json(f.read())
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes`` applied, validated like a loaded config."""
        return type(self).from_dict({**self.to_dict(), **changes})

    @classmethod
    def register_preset(cls: type[C], name: str, config: C) -> C:
        if not isinstance(config, cls):
            raise TypeError(f"preset {name!r} must be a {cls.__name__}")
        cls.presets[name] = config
        return config

    @classmethod
    def from_preset(cls: type[C], name: str) -> C:
        try:
            return cls.presets[name]
        except KeyError:
            known = ", ".join(sorted(cls.presets)) or "none"
            raise ConfigError(f"no {cls.__name__} preset named {name!r} (known: {known})") from None


__all__ = ["Config", "ConfigError"]


def replace_given(settings: T, given: dict) -> T:
    """A frozen dataclass with the given fields replaced, those given as None left as they are
    (sampling defaults overridden by the options a user gave)."""
    return dataclasses.replace(settings, **{k: v for k, v in given.items() if v is not None})
