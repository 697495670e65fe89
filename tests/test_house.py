"""The house rules of the package's layout (README, Architecture): imports point down the
layers and never in a circle, and modules and functions stay a readable size.

Every import counts, the ones inside functions too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "backprop_cli"
# The layers, bottom first: a module may import its own layer and the ones below it.
LAYERS = [
    ("errors", "system", "version"),
    ("nn",),
    ("config",),
    ("store",),
    ("data",),
    ("training",),
    ("sweep",),
    ("inference", "trace", "checks", "schema", "catalog"),
    ("api", "export", "report"),
    ("sklearn",),
    ("cli", "__main__"),
    ("",),  # the package itself: a facade that imports the API when first asked for
]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports (a package import counts as its __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            bases = [a.name for a in node.names]
            found |= {b for b in bases if b in MODULES}
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        subs = {f"{base}.{a.name}" for a in node.names} & set(MODULES)
        found |= subs or ({base} & set(MODULES))
    found.discard(name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else ""
    for i, tops in enumerate(LAYERS):
        if top in tops:
            return i
    return -1


def test_every_module_is_in_a_layer():
    assert [m for m in MODULES if _layer(m) < 0] == []
    assert GRAPH["backprop_cli"] - {"backprop_cli.version"} <= {
        "backprop_cli.api",
        "backprop_cli.sklearn",
    }  # the facade: the version, and the API when first asked for


def test_imports_point_down_the_layers():
    upward = [f"{m} -> {d}" for m, deps in GRAPH.items() for d in deps if _layer(d) > _layer(m)]
    assert upward == []


def test_nn_imports_nothing_but_nn():
    """The numerics are pure NumPy: no I/O, no config objects, nothing of the rest."""
    outside = [
        f"{m} -> {d}" for m, deps in GRAPH.items() if ".nn" in m for d in deps if ".nn" not in d
    ]
    assert outside == []


def test_no_import_cycles():
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_the_graph_is_read_right():
    """The test's own reading of imports, on modules whose imports are known."""
    assert "backprop_cli.config.models" in GRAPH["backprop_cli.store.weights"]
    assert "backprop_cli.nn.network" in GRAPH["backprop_cli.training.build"]
    assert "backprop_cli.cli.app" in GRAPH["backprop_cli.cli.train"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_stay_readable(name):
    text = MODULES[name].read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
