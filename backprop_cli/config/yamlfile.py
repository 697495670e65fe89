"""Safe YAML: configs and sweep files are read with bounded size, depth and alias expansion,
duplicate keys refused, and every syntax error as one line with its line and column."""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

MAX_CONFIG_BYTES = 1_000_000
# A config is a few hundred YAML nodes a few levels deep; past these bounds it is an attack
# (an alias bomb, a recursion bomb) or a mistake, refused before anything is constructed.
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys (a silent last-one-wins hides typos), deep
    nesting, recursive aliases and aliases that expand past MAX_YAML_NODES values ("billion
    laughs"): the node graph is measured before a single Python object is constructed."""

    _depth = 0

    def compose_node(self, parent, index):
        # The composer recurses once per nesting level: stop well before Python's limit.
        if self._depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"nested more than {MAX_YAML_DEPTH} levels deep; a config needs a few",
                self.peek_event().start_mark,
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):
        node = super().compose_document()
        _check_node_graph(node)
        return node


def _check_node_graph(root) -> None:
    """Refuse a YAML node graph whose expansion (every alias copied out) is too big or too deep,
    or that contains itself. Sizes are memoized per node, so this costs one pass over the
    file's own nodes, however far its aliases would expand."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()  # the ancestors of the node being visited
    stack = [(root, False)]
    while stack:
        node, finished = stack.pop()
        kids = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else (node.value if isinstance(node, yaml.SequenceNode) else [])
        )
        if finished:
            open_.discard(id(node))
            size[id(node)] = 1 + sum(size[id(k)] for k in kids)
            depth[id(node)] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[id(node)] > MAX_YAML_NODES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"this value expands to more than {MAX_YAML_NODES} YAML nodes through its "
                    "aliases (an alias bomb?); a config needs a few hundred",
                    node.start_mark,
                )
            if depth[id(node)] > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"aliases nest this value more than {MAX_YAML_DEPTH} levels deep",
                    node.start_mark,
                )
            continue
        if id(node) in size:
            continue
        if id(node) in open_:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to a value that contains it", node.start_mark
            )
        open_.add(id(node))
        stack.append((node, True))
        stack.extend((k, False) for k in kids)


def _construct_mapping(loader, node, deep=False):
    """A mapping whose own keys are each given once; merge keys (``<<: *anchor``) work as YAML
    says: the merged mapping's keys first, the node's own keys override them."""
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a key must be a plain value, not a list or mapping",
                key_node.start_mark,
            ) from None
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen.add(key)
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 reads 1e-3 (no dot) as a string; YAML 1.2 and every user read it as a number.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, source: str) -> Any:
    """yaml safe-load ``text``; syntax errors become one line with the line and column."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = ", ".join(x for x in (e.context, e.problem) if x)  # "while ..., found ..."
        raise ConfigError(f"{source}: {where}{' '.join(what.split())}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {' '.join(str(e).split())}") from None
    except ValueError:  # Python's bound on the digits of an integer read from text
        raise ConfigError(
            f"{source}: a number with more than {sys.get_int_max_str_digits()} digits; "
            "a config needs a few"
        ) from None


def read_yaml_file(path: str | Path, what: str = "config file") -> Any:
    """The parsed content of a YAML file read as configs are: bounded size, UTF-8, strict YAML."""
    p = Path(path)
    try:
        if p.is_dir():
            raise ConfigError(f"{path}: is a directory, expected a YAML {what}")
        with open(p, "rb", opener=_open_regular) as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except (OSError, ValueError) as e:  # permissions, a name too long, a NUL byte, ...
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError(f"{path}: cannot read {what} ({reason})") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {what} larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    return parse_yaml(text, str(path))


def _open_regular(path: str, flags: int) -> int:
    """Open without blocking on a FIFO, then refuse anything but a regular file (a FIFO or a
    device would hang the read or never end)."""
    fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return fd


def read_config_file(path: str | Path) -> dict:
    """The raw mapping of a YAML config file."""
    data = read_yaml_file(path)
    if data is None:
        raise ConfigError(
            f"{path}: the config file is empty; expected a mapping with data, model, loss, ..."
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys (got {type(data).__name__})"
        )
    return data
