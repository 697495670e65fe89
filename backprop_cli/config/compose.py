"""Several config files as one: ``backprop train base.yaml experiment.yaml``.

Later files win. Mappings merge key by key; anything else (a list, a number, a string, null)
replaces what was there whole, as LightningCLI composes its ``--config`` files. Two sections
are chosen by name, the optimizer and the lr schedule: a later file that names another one
replaces the section (adam's betas mean nothing to sgd), one that keeps the name (or gives
none) merges into it, and ``optimizer: sgd`` is ``optimizer: {name: sgd}``.

Every key remembers the file that set it last, so that an error names the file to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .yamlfile import read_config_file

NAMED_SECTIONS = (("optimizer",), ("training", "lr_schedule"))


@dataclass
class Composed:
    data: dict
    paths: list[str]
    origin: dict[tuple, str] = field(default_factory=dict)  # key path -> the file that set it

    @property
    def source(self) -> str:
        """The files, as a message names them when no single one is to blame."""
        return " + ".join(self.paths)

    def source_of(self, loc: Sequence) -> str:
        """The file that set the deepest key of ``loc`` (a pydantic error location) present in
        the data; the locations's parts the data does not have (a union's tag, a missing key)
        are passed over."""
        if len(self.paths) == 1:
            return self.paths[0]
        node, keys, best = self.data, (), None
        for part in loc:
            if isinstance(node, dict) and part in node:
                node, keys = node[part], (*keys, part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node, keys = node[part], (*keys, part)
            else:
                continue
            best = self.origin.get(keys, best)
        return best or self.source


def compose(paths: Sequence[str | Path]) -> Composed:
    if not paths:
        raise ConfigError("no config file given; expected CONFIG [CONFIG ...]")
    out = Composed({}, [str(p) for p in paths])
    for path in out.paths:
        merge(out.data, read_config_file(path), path, out.origin)
    return out


def merge(target: dict, new: dict, source: str, origin: dict, prefix: tuple = ()) -> None:
    """Merge ``new`` into ``target`` in place, recording ``source`` for each key it sets."""
    for key, value in new.items():
        path = (*prefix, key)
        old = target.get(key)
        if path in NAMED_SECTIONS and old is not None:
            old, value = _named(old), _named(value)
            if isinstance(old, dict) and isinstance(value, dict):
                if value.get("name", old.get("name")) != old.get("name"):
                    old = None  # another optimizer or schedule: its own keys only
        if isinstance(old, dict) and isinstance(value, dict):
            merge(old, value, source, origin, path)
            target[key] = old
        else:
            _forget(origin, path)
            target[key] = value
            _remember(value, source, origin, path)
        origin[path] = source


def _named(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


def _forget(origin: dict, path: tuple) -> None:
    for k in [k for k in origin if k[: len(path)] == path]:
        del origin[k]


def _remember(value: Any, source: str, origin: dict, path: tuple) -> None:
    """Every key path inside a value set whole comes from ``source``."""
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for k, v in items:
        origin[(*path, k)] = source
        _remember(v, source, origin, (*path, k))
