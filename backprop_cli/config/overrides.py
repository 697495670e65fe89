"""``--set KEY.PATH=VALUE`` overrides, and the key paths they use (``training.lr_schedule.name``,
``model.layers[0].units``): parsed here and nowhere else."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigError
from .yamlfile import parse_yaml

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def key_parts(key: str) -> list[str | int]:
    """``model.layers[0].units`` -> ['model', 'layers', 0, 'units'] (digits alone are indices too)."""
    parts = [
        m.group(1) if m.group(1) is not None else int(m.group(2))
        for m in _SEGMENT.finditer(key.strip())
    ]
    return [int(p) if isinstance(p, str) and p.isdigit() else p for p in parts]


def key_path(parts) -> str:
    """The parts of a key path written back: ['model', 'layers', 0] -> model.layers[0]."""
    out = ""
    for part in parts:
        if not isinstance(part, int):
            part = str(part) if str(part).isprintable() else repr(str(part))
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def parse_override(item: str, source: str = "--set") -> tuple[str, Any]:
    """``KEY=VALUE`` -> (KEY, the value read as YAML: ``0.01``, ``true``, ``[64, 64]``)."""
    if "=" not in item:
        raise ConfigError(f"{source} {item!r}: expected KEY=VALUE, e.g. optimizer.lr=0.01")
    key, _, text = item.partition("=")
    if not "".join(str(p) for p in key_parts(key)):
        raise ConfigError(f"{source} {item!r}: empty key")
    return key, parse_yaml(text, f"{source} {key}")


def set_key(data: dict, key: str, value: Any, source: str = "--set") -> None:
    """Set ``key`` (a key path) to ``value`` in the raw config mapping, creating the mappings
    and the optimizer section on the way (a new optimizer section keeps the default's name)."""
    parts = key_parts(key)
    if not "".join(str(p) for p in parts):
        raise ConfigError(f"{source} {key!r}: empty key")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ConfigError(f"{source} {key}: no list item {part} at {key_path(parts[:i])}")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"{source} {key}: {key_path(parts[:i])} is not a mapping")
        if part not in node or node[part] is None:
            node[part] = (
                []
                if isinstance(nxt, int)
                else ({"name": "adam"} if parts[: i + 1] == ["optimizer"] else {})
            )
        if isinstance(node[part], str) and part == "optimizer":
            node[part] = {"name": node[part]}
        node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(f"{source} {key}: no list item {last}")
    elif not isinstance(node, dict):
        raise ConfigError(f"{source} {key}: {key_path(parts[:-1])} is not a mapping")
    node[last] = value


def apply_overrides(data: dict, overrides: list[str], source: str = "--set") -> dict:
    """Apply ``KEY=VALUE`` strings, each value read as YAML, in order."""
    for item in overrides:
        key, value = parse_override(item, source)
        set_key(data, key, value, source)
    return data
