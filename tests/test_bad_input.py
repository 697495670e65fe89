"""Bad input never crashes it, never runs code, never loses work (issue 5).

One table, one row per bad input: a setup that writes the bad file(s) into the test's
directory, the command line, and words the message must contain. Every row must end in
exit 2 with exactly one ``error: `` line on stderr, no traceback, no new file or directory
and every file that was there before byte-identical. Then: a full disk in the middle of
training, a weights file claiming a huge array in a tiny body, and a property test of
random configs and ``--set`` strings through ``backprop validate``.
"""

from __future__ import annotations

import copy
import errno
import gzip
import io
import json
import os
import shutil
import stat
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backprop_cli.cli import main
from backprop_cli.errors import WeightsError
from backprop_cli.store import weights as runs

from .conftest import CONFIGS, ROOT

_REAL_OPEN = io.open
IRIS = CONFIGS / "iris.yaml"
# The run the weights and checkpoint rows start from: a config of the tests' own, so that
# shapes like (4, 16) and 131 parameters do not move when the shipped configs do.
IRIS_TEXT = """name: iris
seed: 0
data: {dataset: iris, validation: 0.2, test: 0.2}
model:
  layers:
    - {units: 16, activation: tanh}
    - {units: 3, activation: softmax}
  init: xavier
loss: cross_entropy
optimizer: {name: adam, lr: 0.01}
training: {epochs: 2, batch_size: 16}
"""
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")  # made on purpose
XOR = CONFIGS / "xor.yaml"
IRIS_CSV = ROOT / "datasets" / "iris.csv"
IRIS_FEATURES = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm"
# A valid config of its own (the rows edit its text; the shipped configs may change).
XOR_TEXT = """name: xor
seed: 1
data: {dataset: xor, validation: 0, test: 0, standardize: false}
model:
  layers:
    - {units: 3, activation: sigmoid}
    - {units: 1, activation: sigmoid}
  dtype: float64
loss: mse
optimizer: {name: sgd, lr: 2.0, momentum: 0.9}
training: {epochs: 300, batch_size: full, shuffle: false}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real run: iris trained for 2 epochs (weights.npz, checkpoint.npz, config.yaml)."""
    d = tmp_path_factory.mktemp("trained")
    (d / "iris.yaml").write_text(IRIS_TEXT)
    out = d / "run"
    code = main(["train", str(d / "iris.yaml"), "--quiet", "--out", str(out)])
    assert code == 0
    return out


@dataclass
class Ctx:
    tmp: Path  # the test's directory, also the working directory
    mp: pytest.MonkeyPatch
    run: Path  # the trained run: read it, copy what you change


# ---------------------------------------------------------------------------- helpers for setups


def write(name: str, text: str | bytes) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        p = ctx.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode() if isinstance(text, str) else text)

    return setup


def both(*setups: Callable[[Ctx], None]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        for s in setups:
            s(ctx)

    return setup


def nothing(ctx: Ctx) -> None:
    pass


def config(data: str, model: str = "[{units: 2, activation: softmax}]", extra: str = "") -> str:
    """A config over data.csv (target y, no held-out rows unless data says so)."""
    return (
        f"data: {{{data}}}\nmodel: {{layers: {model}}}\nloss: cross_entropy\n"
        f"optimizer: {{name: sgd, lr: 0.1}}\ntraining: {{epochs: 1}}\n{extra}"
    )


CSV_CFG = config("path: data.csv, target: y, validation: 0, test: 0")


def csv_case(csv_text: str, cfg: str = CSV_CFG, name: str = "data.csv"):
    return both(write("c.yaml", cfg), write(name, csv_text))


def deny(name: str) -> Callable[[Ctx], None]:
    """Opening a file called ``name`` fails with EACCES (the tests run as root, so chmod would not)."""

    def setup(ctx: Ctx) -> None:
        real = io.open

        def fake_open(file, *args, **kwargs):
            if isinstance(file, str | os.PathLike) and Path(os.fsdecode(file)).name == name:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(file))
            return real(file, *args, **kwargs)

        ctx.mp.setattr("builtins.open", fake_open)
        ctx.mp.setattr("io.open", fake_open)

    return setup


def disk_full(ctx: Ctx) -> None:
    """Every fsync of a regular file fails with ENOSPC (what a full disk does to a write)."""
    real = os.fsync

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    ctx.mp.setattr(os, "fsync", fsync)


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(array), allow_pickle=allow_pickle)
    return buf.getvalue()


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def write_zip(path: Path, items, compression=zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in items:
            zf.writestr(name, data)


def spec_of(run: Path) -> dict:
    with np.load(run / "weights.npz", allow_pickle=False) as z:
        return json.loads(str(z["spec"]))


def weights(
    change: dict[str, bytes | None] | None = None,
    spec: Callable[[dict], object] | None = None,
    extra: list[tuple[str, bytes]] | None = None,
    name: str = "w.npz",
) -> Callable[[Ctx], None]:
    """The trained weights.npz, rewritten: members replaced (bytes) or removed (None), the spec
    edited in place by ``spec(d)``, members appended as they are."""

    def setup(ctx: Ctx) -> None:
        items = members(ctx.run / "weights.npz")
        if spec is not None:
            d = spec_of(ctx.run)
            spec(d)
            items["spec.npy"] = npy(np.array(json.dumps(d)))
        for k, v in (change or {}).items():
            if v is None:
                items.pop(k)
            else:
                items[k] = v
        write_zip(ctx.tmp / name, [*items.items(), *(extra or [])])

    return setup


def weights_bytes(edit: Callable[[bytes], bytes], name: str = "w.npz") -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        (ctx.tmp / name).write_bytes(edit((ctx.run / "weights.npz").read_bytes()))

    return setup


def set_spec(key, value):
    def edit(d):
        d[key] = value

    return edit


def huge_w0() -> bytes:
    """A W0.npy whose header claims 20000 x 20000 float64 (3.2 GB) and whose data is 64 bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (20000, 20000)}
    )
    return b"\x93NUMPY\x02\x00" + header.getvalue()[8:] + bytes(64)


class Evil:
    """Unpickling this creates the file ``pwned``: proof that nothing was unpickled is its absence."""

    def __reduce__(self):
        return (open, ("pwned", "w"))


def run_dir(ckpt_change: Callable[[Path], None] | None = None) -> Callable[[Ctx], None]:
    """The trained run copied to ./run with its config as ./iris.yaml, its checkpoint changed
    by ``ckpt_change(path)``."""

    def setup(ctx: Ctx) -> None:
        (ctx.tmp / "iris.yaml").write_text(IRIS_TEXT)
        shutil.copytree(ctx.run, ctx.tmp / "run")
        if ckpt_change is not None:
            ckpt_change(ctx.tmp / "run" / "checkpoint.npz")

    return setup


def ckpt_members(
    change: dict[str, bytes | None] | None = None, state: Callable[[dict], None] | None = None
):
    def edit(path: Path) -> None:
        items = members(path)
        if state is not None:
            with np.load(path, allow_pickle=False) as z:
                s = json.loads(str(z["state"]))
            state(s)
            items["state.npy"] = npy(np.array(json.dumps(s)))
        for k, v in (change or {}).items():
            if v is None:
                items.pop(k)
            else:
                items[k] = v
        write_zip(path, list(items.items()))

    return edit


def ckpt_bytes(edit: Callable[[bytes], bytes]):
    def change(path: Path) -> None:
        path.write_bytes(edit(path.read_bytes()))

    return change


def params_of(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as z:
        return z["params"]


RESUME = ["train", "iris.yaml", "--out", "run", "--resume", "--set", "training.epochs=4"]
TRAIN = ["train", "c.yaml"]
BILLION_LAUGHS = "".join(
    f"{a}: &{a} [{', '.join([f'*{p}'] * 9 if p else ['lol'] * 9)}]\n"
    for p, a in zip([None, *"abcdefgh"], "abcdefghi", strict=True)
)
IRIS_ROWS = IRIS_CSV.read_text().splitlines()


def iris_csv(rows: list[str], header: str = IRIS_ROWS[0]) -> str:
    return "\n".join([header, *rows]) + "\n"


# ---------------------------------------------------------------------------- the table

W = ["eval", "--weights", "w.npz"]

CASES: list[tuple[str, Callable[[Ctx], None], list, list[str]]] = [
    # --- config files
    ("config-missing", nothing, ["train", "nope.yaml"], ["nope.yaml", "not found"]),
    ("config-directory", write("d/x", "x"), ["train", "d"], ["d:", "is a directory"]),
    (
        "config-unreadable",
        both(write("c.yaml", XOR_TEXT), deny("c.yaml")),
        TRAIN,
        ["c.yaml", "cannot read", "Permission denied"],
    ),
    (
        "config-name-too-long",
        nothing,
        ["train", "x" * 300 + ".yaml"],
        ["cannot read config file", "too long"],
    ),
    ("config-empty", write("c.yaml", ""), TRAIN, ["c.yaml", "empty"]),
    ("config-only-comments", write("c.yaml", "# nothing\n"), TRAIN, ["c.yaml", "empty"]),
    ("config-not-mapping", write("c.yaml", "- a\n- b\n"), TRAIN, ["must be a mapping", "list"]),
    ("config-scalar", write("c.yaml", "42\n"), TRAIN, ["must be a mapping", "int"]),
    ("config-not-utf8", write("c.yaml", b"name: \xff\xfe\n"), TRAIN, ["not a UTF-8"]),
    (
        "config-too-large",
        write("c.yaml", "# " + "x" * 1_000_001 + "\n"),
        TRAIN,
        ["larger than 1000000 bytes"],
    ),
    (
        "config-yaml-syntax",
        write("c.yaml", "data: {dataset: xor\nmodel: [\n"),
        TRAIN,
        ["c.yaml", "line ", "column "],
    ),
    (
        "config-unknown-key",
        write("c.yaml", XOR_TEXT + "optimizr: adam\n"),
        TRAIN,
        ["optimizr", "unknown key", "did you mean 'optimizer'"],
    ),
    (
        "config-wrong-type",
        write("c.yaml", XOR_TEXT.replace("epochs: 300", "epochs: ten")),
        TRAIN,
        ["training.epochs", "expected an integer", "'ten'"],
    ),
    (
        "config-out-of-range",
        write("c.yaml", XOR_TEXT.replace("lr: 2.0", "lr: -0.5")),
        TRAIN,
        ["optimizer.lr", "must be > 0", "-0.5"],
    ),
    (
        "config-inconsistent",
        write("c.yaml", XOR_TEXT.replace("loss: mse", "loss: cross_entropy")),
        TRAIN,
        ["model.layers[1].activation", "softmax"],
    ),
    (
        "config-python-object-apply",
        write("c.yaml", "name: !!python/object/apply:os.system ['touch pwned']\n"),
        TRAIN,
        ["c.yaml", "python/object/apply:os.system"],
    ),
    (
        "config-python-name",
        write("c.yaml", "name: !!python/name:os.system\n"),
        TRAIN,
        ["python/name:os.system"],
    ),
    (
        "config-python-object-new",
        write("c.yaml", "name: !!python/object/new:subprocess.Popen [['touch', 'pwned']]\n"),
        TRAIN,
        ["python/object/new:subprocess.Popen"],
    ),
    (
        "config-billion-laughs",
        write("c.yaml", BILLION_LAUGHS),
        TRAIN,
        ["c.yaml", "more than 100000 YAML nodes", "alias"],
    ),
    (
        "config-alias-bomb-in-a-key",
        write("c.yaml", XOR_TEXT + BILLION_LAUGHS.replace("i: &i", "name: &i")),
        TRAIN,
        ["more than 100000 YAML nodes"],
    ),
    (
        "config-recursive-alias",
        write("c.yaml", XOR_TEXT.replace("name: xor", "name: &a [*a]")),
        TRAIN,
        ["an alias refers to a value that contains it"],
    ),
    (
        "config-nested-too-deep",
        write("c.yaml", "name: " + "[" * 100_000 + "]" * 100_000 + "\n"),
        TRAIN,
        ["nested more than 64 levels"],
    ),
    (
        "config-duplicate-key",
        write("c.yaml", XOR_TEXT + "seed: 2\n"),
        TRAIN,
        ["line 12, column 1", "duplicate key 'seed'"],
    ),
    (
        "config-unhashable-key",
        write("c.yaml", "? [a, b]\n: 1\n"),
        TRAIN,
        ["line 1", "a key must be a plain value"],
    ),
    (
        "config-two-documents",
        write("c.yaml", "name: a\n---\nname: b\n"),
        TRAIN,
        ["c.yaml", "expected a single document", "found another document"],
    ),
    (
        "config-name-is-a-path",
        write("c.yaml", XOR_TEXT.replace("name: xor", "name: ../../elsewhere")),
        TRAIN,
        ["name:", "plain run name", "'../../elsewhere'"],
    ),
    (
        "config-too-many-parameters",
        write("c.yaml", XOR_TEXT.replace("units: 3,", "units: 100001,")),
        TRAIN,
        ["model.layers[0].units", "<= 100000"],
    ),
    (
        "config-parameters-between-layers",
        write(
            "c.yaml",
            XOR_TEXT.replace(
                "- {units: 3, activation: sigmoid}",
                "- {units: 50000}\n    - {units: 50000}\n    - {units: 3}",
            ),
        ),
        TRAIN,
        ["model.layers", "parameters between the layers", "2,147,483,648"],
    ),
    # --- --set
    ("set-no-equals", nothing, ["train", XOR, "--set", "seed"], ["--set 'seed'", "KEY=VALUE"]),
    ("set-empty-key", nothing, ["train", XOR, "--set", "=3"], ["empty key"]),
    (
        "set-unknown-key",
        nothing,
        ["train", XOR, "--set", "optimizer.lrr=0.1"],
        ["optimizer.lrr", "did you mean 'lr'"],
    ),
    (
        "set-unknown-top-level-key",
        nothing,
        ["train", XOR, "--set", "trainig.epochs=3"],
        ["trainig", "did you mean 'training'"],
    ),
    (
        "set-bad-value",
        nothing,
        ["train", XOR, "--set", "training.batch_size=-4"],
        ["training.batch_size", "must be > 0 or 'full'", "-4"],
    ),
    (
        "set-wrong-type",
        nothing,
        ["train", XOR, "--set", "data.standardize=maybe"],
        ["data.standardize", "expected true or false", "'maybe'"],
    ),
    (
        "set-yaml-syntax",
        nothing,
        ["train", XOR, "--set", "model.layers=[{units: 2"],
        ["--set model.layers", "line 1"],
    ),
    (
        "set-index-out-of-range",
        nothing,
        ["train", XOR, "--set", "model.layers[7].units=2"],
        ["model.layers[7].units", "no list item 7"],
    ),
    (
        "set-through-a-scalar",
        nothing,
        ["train", XOR, "--set", "seed.x=1"],
        ["seed.x", "seed is not a mapping"],
    ),
    (
        "set-python-tag",
        nothing,
        ["train", XOR, "--set", "name=!!python/object/apply:os.system ['touch pwned']"],
        ["--set name", "python/object/apply:os.system"],
    ),
    (
        "set-nul-in-a-path",
        nothing,
        ["train", XOR, "--set", 'output.dir="a\\0b"'],
        ["output.dir", "expected a file system path"],
    ),
    # --- data files
    (
        "data-missing",
        write("c.yaml", CSV_CFG),
        TRAIN,
        ["data.csv", "data file not found"],
    ),
    (
        "data-directory",
        both(write("c.yaml", CSV_CFG), write("data.csv/x", "")),
        TRAIN,
        ["data.csv", "is a directory"],
    ),
    (
        "data-unreadable",
        both(csv_case("a,y\n1,0\n2,1\n"), deny("data.csv")),
        TRAIN,
        ["data.csv", "cannot read", "Permission denied"],
    ),
    (
        "data-name-too-long",
        write("c.yaml", CSV_CFG.replace("data.csv", "d" * 300 + ".csv")),
        TRAIN,
        ["cannot open the data file", "too long"],
    ),
    (
        "data-unsupported-extension",
        csv_case("a,y\n", CSV_CFG.replace("data.csv", "data.xlsx"), "data.xlsx"),
        TRAIN,
        ["data.xlsx", "unsupported file type '.xlsx'", ".csv"],
    ),
    ("data-empty", csv_case(""), TRAIN, ["data.csv", "the file is empty"]),
    ("data-header-only", csv_case("a,b,y\n"), TRAIN, ["data.csv", "no data rows", "a, b, y"]),
    (
        "data-binary-garbage",
        csv_case(bytes(range(256)) * 8),
        TRAIN,
        ["data.csv", "cannot parse"],
    ),
    (
        "data-no-target-column",
        csv_case("a,b,label\n1,2,x\n3,4,y\n"),
        TRAIN,
        ["data.csv", "no target column 'y'", "the columns are a, b, label"],
    ),
    (
        "data-declared-numeric-holds-text",
        csv_case(
            "a,colour,y\n1,red,0\n2,blue,1\n",
            config("path: data.csv, target: y, validation: 0, test: 0, columns: {colour: numeric}"),
        ),
        TRAIN,
        ["column 'colour' is numeric (data.columns) but holds 'red'", "categorical"],
    ),
    (
        "data-columns-names-no-column",
        csv_case(
            "a,b,y\n1,2,0\n2,3,1\n",
            config("path: data.csv, target: y, validation: 0, test: 0, columns: {c: categorical}"),
        ),
        TRAIN,
        ["data.columns names 'c'", "not a feature column", "a, b"],
    ),
    (
        "data-unknown-impute-strategy",
        csv_case(
            "a,b,y\n1,2,0\n2,3,1\n",
            config("path: data.csv, target: y, validation: 0, test: 0, impute: average"),
        ),
        TRAIN,
        ["data.impute: 'average' is not allowed", "'mean'"],
    ),
    (
        "data-over-wide-category-column",
        csv_case("name,y\n" + "".join(f"n{i},{i % 2}\n" for i in range(101))),
        TRAIN,
        ["column 'name' has 101 distinct values", "data.columns.name.max_categories"],
    ),
    (
        "data-nan-cells-not-imputed",
        csv_case(
            "a,b,y\n1,NaN,0\n2,3,1\n4,NaN,0\n",
            config("path: data.csv, target: y, validation: 0, test: 0, impute: none"),
        ),
        TRAIN,
        ["column 'b'", "2 empty or NaN", "data.impute", "data.dropna: true"],
    ),
    (
        "data-inf-cells",
        csv_case("a,b,y\ninf,1,0\n2,3,1\n"),
        TRAIN,
        ["column 'a'", "1 Inf cell(s)"],
    ),
    (
        "data-empty-cells-not-imputed",
        csv_case(
            "a,b,y\n1,,0\n,3,1\n5,6,0\n",
            config("path: data.csv, target: y, validation: 0, test: 0, impute: none"),
        ),
        TRAIN,
        ["column 'a'", "1 empty or NaN", "data.dropna: true"],
    ),
    (
        "data-empty-categorical-cells-not-imputed",
        csv_case(
            "a,c,y\n1,x,0\n2,,1\n3,y,0\n",
            config("path: data.csv, target: y, validation: 0, test: 0, impute_categorical: none"),
        ),
        TRAIN,
        ["column 'c'", "1 empty cell", "data.impute_categorical"],
    ),
    (
        "data-empty-target-cell",
        csv_case("a,y\n1,0\n2,\n3,1\n"),
        TRAIN,
        ["target column 'y'", "1 empty cell", "data.dropna: true"],
    ),
    (
        "data-dropna-leaves-nothing",
        csv_case(
            "a,y\n,0\nnan,1\n",
            config("path: data.csv, target: y, validation: 0, test: 0, dropna: true"),
        ),
        TRAIN,
        ["no rows left after data.dropna"],
    ),
    (
        "data-too-large-to-standardize",
        csv_case("a,y\n1e308,0\n1.7e308,1\n-1.7e308,1\n"),
        TRAIN,
        ["column 'a'", "too large to standardize", "overflows float64"],
    ),
    (
        "data-beyond-float32",
        csv_case(
            "a,b,y\n1,1e300,0\n2,3,1\n",
            config("path: data.csv, target: y, validation: 0, test: 0, standardize: false"),
        ),
        TRAIN,
        ["column 'b'", "beyond float32 range", "model.dtype: float64"],
    ),
    (
        "data-target-beyond-float32",
        csv_case(
            "a,y\n1,1e300\n2,3\n",
            config("path: data.csv, target: y, validation: 0, test: 0", "[{units: 1}]").replace(
                "cross_entropy", "mse"
            ),
        ),
        TRAIN,
        ["the target has values beyond float32 range"],
    ),
    (
        "data-single-class",
        csv_case("a,y\n1,cat\n2,cat\n3,cat\n"),
        TRAIN,
        ["single class ('cat')", "at least 2"],
    ),
    (
        "data-too-few-rows-for-the-splits",
        csv_case(
            "a,y\n1,0\n2,1\n",
            config("path: data.csv, target: y, validation: 0.1, test: 0.1"),
        ),
        TRAIN,
        ["2 rows are too few", "split", "lower data."],
    ),
    (
        "data-regression-text-target",
        csv_case(
            "a,y\n1,big\n2,small\n",
            config("path: data.csv, target: y, validation: 0, test: 0", "[{units: 1}]").replace(
                "cross_entropy", "mse"
            ),
        ),
        TRAIN,
        ["regression needs numeric targets"],
    ),
    (
        "data-npz-object-array",
        both(
            write("c.yaml", CSV_CFG.replace("data.csv", "data.npz")),
            lambda ctx: write_zip(
                ctx.tmp / "data.npz",
                [
                    ("X.npy", npy(np.array([[Evil()]], dtype=object), allow_pickle=True)),
                    ("y.npy", npy(np.array([0]))),
                ],
            ),
        ),
        TRAIN,
        ["data.npz", "X has dtype object", "never unpickled"],
    ),
    (
        "data-npz-without-y",
        both(
            write("c.yaml", CSV_CFG.replace("data.csv", "data.npz")),
            lambda ctx: write_zip(ctx.tmp / "data.npz", [("X.npy", npy(np.zeros((3, 2))))]),
        ),
        TRAIN,
        ["needs arrays 'X' and 'y'", "found X"],
    ),
    (
        "data-npz-not-a-zip",
        csv_case("a,y\n1,0\n", CSV_CFG.replace("data.csv", "data.npz"), "data.npz"),
        TRAIN,
        ["data.npz", "not a readable .npz data file", "BadZipFile"],
    ),
    (
        "data-npz-huge-claim",
        both(
            write("c.yaml", CSV_CFG.replace("data.csv", "data.npz")),
            lambda ctx: write_zip(
                ctx.tmp / "data.npz",
                [("X.npy", huge_w0()), ("y.npy", npy(np.zeros(20000)))],
                zipfile.ZIP_DEFLATED,
            ),
        ),
        TRAIN,
        ["data.npz", "X is truncated", "64 of 3200000000 bytes"],
    ),
    # --- data at eval and predict
    (
        "eval-unseen-label",
        both(
            weights_bytes(lambda b: b),
            write("odd.csv", iris_csv([IRIS_ROWS[1].rsplit(",", 1)[0] + ",daisy"])),
        ),
        [*W, "--data", "odd.csv"],
        ["odd.csv", "label 'daisy'", "not among the training classes", "setosa"],
    ),
    (
        "eval-feature-missing",
        both(weights_bytes(lambda b: b), write("few.csv", "a,b,c,target\n1,2,3,setosa\n")),
        [*W, "--data", "few.csv"],
        ["few.csv", "no column 'sepal_length_cm'", "matched by name"],
    ),
    (
        "eval-data-missing",
        weights_bytes(lambda b: b),
        [*W, "--data", "nope.csv"],
        ["nope.csv", "not found"],
    ),
    (
        "predict-feature-missing",
        both(weights_bytes(lambda b: b), write("few.csv", "a,b,c\n1,2,3\n")),
        ["predict", "--weights", "w.npz", "--data", "few.csv"],
        ["few.csv", "no column 'sepal_length_cm'", "matched by name"],
    ),
    (
        "predict-headerless-feature-count",
        both(weights_bytes(lambda b: b), write("few.csv", "1,2,3\n4,5,6\n")),
        ["predict", "--weights", "w.npz", "--data", "few.csv"],
        ["few.csv", "3 feature column(s)", "takes 4"],
    ),
    (
        "predict-input-beyond-float32",
        both(
            weights_bytes(lambda b: b),
            write("x.csv", f"{IRIS_FEATURES}\n1,2,1e300,4\n"),
        ),
        ["predict", "--weights", "w.npz", "--data", "x.csv"],
        ["x.csv", "column 'petal_length_cm'", "beyond float32 range"],
    ),
    (
        "predict-inf-input",
        both(weights_bytes(lambda b: b), write("x.csv", f"{IRIS_FEATURES}\n1,2,inf,4\n")),
        ["predict", "--weights", "w.npz", "--data", "x.csv"],
        ["x.csv", "column 'petal_length_cm'", "1 Inf cell"],
    ),
    # --- weights files
    ("weights-missing", nothing, W, ["w.npz", "weights file not found"]),
    ("weights-directory", write("w.npz/x", ""), W, ["w.npz", "is a directory"]),
    (
        "weights-unreadable",
        both(weights_bytes(lambda b: b), deny("w.npz")),
        W,
        ["w.npz", "cannot read the weights file", "Permission denied"],
    ),
    (
        "weights-not-a-zip",
        write("w.npz", "name: iris\n"),
        W,
        ["w.npz", "not a readable weights file", "not a zip file"],
    ),
    ("weights-empty-file", write("w.npz", ""), W, ["w.npz", "not a zip file"]),
    (
        "weights-truncated-half",
        weights_bytes(lambda b: b[: len(b) // 2]),
        W,
        ["w.npz", "not a readable weights file"],
    ),
    (
        "weights-truncated-tail",
        weights_bytes(lambda b: b[:-30]),
        W,
        ["w.npz", "not a readable weights file"],
    ),
    (
        "weights-flipped-data-byte",
        weights_bytes(lambda b: b[:400] + bytes([b[400] ^ 0x55]) + b[401:]),
        W,
        ["w.npz", "not a readable weights file"],
    ),
    (
        "weights-object-array",
        weights({"W0.npy": npy(np.array([[Evil()] * 16] * 4, dtype=object), True)}),
        W,
        ["w.npz", "W0 has dtype object", "expected float32 or float64"],
    ),
    (
        "weights-pickled-spec",
        weights({"spec.npy": npy(np.array([Evil()], dtype=object), True)}),
        W,
        ["w.npz", "'spec' entry must be one JSON string", "dtype object"],
    ),
    ("weights-missing-array", weights({"W1.npy": None}), W, ["w.npz", "array 'W1' is missing"]),
    (
        "weights-missing-preprocessing",
        weights({"x_scale.npy": None}),
        W,
        ["array 'x_scale' is missing"],
    ),
    ("weights-missing-spec", weights({"spec.npy": None}), W, ["no 'spec' entry"]),
    (
        "weights-spec-not-json",
        weights({"spec.npy": npy(np.array("{sizes: [4, 16, 3]"))}),
        W,
        ["the spec is not valid JSON"],
    ),
    (
        "weights-spec-not-a-spec",
        weights({"spec.npy": npy(np.array("[1, 2, 3]"))}),
        W,
        ["not a backprop-weights spec"],
    ),
    (
        "weights-spec-newer-version",
        weights(spec=set_spec("version", 99)),
        W,
        ["format version 99 is newer", "upgrade backprop"],
    ),
    (
        "weights-spec-version-not-int",
        weights(spec=set_spec("version", "1")),
        W,
        ["format version is '1'", "expected an integer"],
    ),
    (
        "weights-spec-unknown-activation",
        weights(spec=set_spec("activations", ["tanh", "__import__('os')"])),
        W,
        ["unknown activation", "__import__"],
    ),
    (
        "weights-spec-too-many-parameters",
        weights(spec=set_spec("sizes", [4, 1_000_000, 1_000_000, 3])),
        W,
        ["need 1,000,009,000,003", "more than the 2,147,483,648"],
    ),
    (
        "weights-spec-too-many-layers",
        weights(spec=set_spec("sizes", [4] * 2000)),
        W,
        ["spec sizes", "2 to 1001 layer widths"],
    ),
    (
        "weights-spec-classes-disagree",
        weights(spec=set_spec("classes", ["setosa", "versicolor"])),
        W,
        ["spec classes", "a list of 3 class labels"],
    ),
    (
        "weights-spec-bad-loss",
        weights(spec=set_spec("loss", "hinge")),
        W,
        ["spec loss", "cross_entropy"],
    ),
    (
        "weights-spec-bad-data-section",
        weights(spec=lambda d: d["data"].update(validation="lots")),
        W,
        ["spec data.validation", "fraction"],
    ),
    (
        "weights-shape-disagrees",
        weights({"W0.npy": npy(np.zeros((4, 15), np.float32))}),
        W,
        ["W0 has shape (4, 15), the spec says (4, 16)"],
    ),
    (
        "weights-huge-header-tiny-body",
        weights({"W0.npy": huge_w0()}),
        W,
        ["W0 has shape (20000, 20000), the spec says (4, 16)"],
    ),
    (
        "weights-dtype-int",
        weights({"W0.npy": npy(np.zeros((4, 16), np.int64))}),
        W,
        ["W0 has dtype int64, expected float32 or float64"],
    ),
    (
        "weights-dtype-float16",
        weights({"b0.npy": npy(np.zeros(16, np.float16))}),
        W,
        ["b0 has dtype float16"],
    ),
    (
        "weights-dtype-complex",
        weights({"b1.npy": npy(np.zeros(3, np.complex128))}),
        W,
        ["b1 has dtype complex128"],
    ),
    (
        "weights-nan",
        weights({"W1.npy": npy(np.full((16, 3), np.nan, np.float32))}),
        W,
        ["W1 holds NaN or Inf"],
    ),
    (
        "weights-inf",
        weights({"x_mean.npy": npy(np.array([1, np.inf, 0, 0]))}),
        W,
        ["x_mean holds NaN or Inf"],
    ),
    (
        "weights-zero-scale",
        weights({"x_scale.npy": npy(np.zeros(4))}),
        W,
        ["x_scale must be positive"],
    ),
    (
        "weights-member-in-a-directory",
        weights(extra=[("sub/W0.npy", npy(np.zeros(2)))]),
        W,
        ["unexpected member 'sub/W0.npy'", "NAME.npy"],
    ),
    (
        "weights-member-climbing-out",
        weights(extra=[("../../evil.npy", npy(np.zeros(2)))]),
        W,
        ["unexpected member '../../evil.npy'"],
    ),
    (
        "weights-member-not-npy",
        weights(extra=[("README.txt", b"hello")]),
        W,
        ["unexpected member 'README.txt'"],
    ),
    (
        "weights-member-twice",
        weights(extra=[("W0.npy", npy(np.ones((4, 16), np.float32)))]),
        W,
        ["holds 'W0.npy' twice"],
    ),
    (
        "weights-thousands-of-members",
        weights(extra=[(f"a{i}.npy", b"") for i in range(5000)]),
        W,
        ["5007 members", "at most 2016"],
    ),
    (
        "weights-member-not-npy-data",
        weights({"W0.npy": b"PK not an array"}),
        W,
        ["W0.npy: not a .npy array"],
    ),
    (
        "weights-npy-header-too-large",
        weights({"W0.npy": b"\x93NUMPY\x02\x00" + (2**31).to_bytes(4, "little") + b"{"}),
        W,
        ["W0.npy: a .npy header of 2147483648 bytes", "at most 10000"],
    ),
    (
        "weights-npy-version-3",
        weights({"W0.npy": b"\x93NUMPY\x03\x00" + npy(np.zeros((4, 16)))[8:]}),
        W,
        ["unsupported .npy format version (3, 0)"],
    ),
    (
        "weights-train-weights",
        both(
            write("iris.yaml", IRIS_TEXT), weights({"W0.npy": npy(np.zeros((4, 15), np.float32))})
        ),
        ["train", "iris.yaml", "--weights", "w.npz"],
        ["w.npz", "W0 has shape (4, 15)"],
    ),
    (
        "weights-predict",
        weights_bytes(lambda b: b[:100]),
        ["predict", "--weights", "w.npz", "--data", IRIS_CSV],
        ["w.npz", "not a readable weights file"],
    ),
    # --- checkpoints (train --resume)
    (
        "checkpoint-missing",
        run_dir(lambda p: p.unlink()),
        RESUME,
        ["run", "no checkpoint.npz"],
    ),
    (
        "checkpoint-not-a-zip",
        run_dir(ckpt_bytes(lambda b: b"hello")),
        RESUME,
        ["checkpoint.npz", "not a readable checkpoint", "not a zip file"],
    ),
    (
        "checkpoint-truncated",
        run_dir(ckpt_bytes(lambda b: b[: len(b) * 2 // 3])),
        RESUME,
        ["checkpoint.npz", "not a readable checkpoint"],
    ),
    (
        "checkpoint-params-shape",
        run_dir(ckpt_members({"params.npy": npy(np.zeros(7, np.float32))})),
        RESUME,
        ["params has shape (7,) float32, this config needs (131,) float32"],
    ),
    (
        "checkpoint-params-dtype",
        run_dir(lambda p: ckpt_members({"params.npy": npy(params_of(p).astype(np.float64))})(p)),
        RESUME,
        ["params has shape (131,) float64", "needs (131,) float32"],
    ),
    (
        "checkpoint-missing-array",
        run_dir(ckpt_members({"opt_exp_avg_sq.npy": None})),
        RESUME,
        ["array 'opt_exp_avg_sq' is missing", "not from this config"],
    ),
    (
        "checkpoint-object-state",
        run_dir(ckpt_members({"state.npy": npy(np.array([Evil()], dtype=object), True)})),
        RESUME,
        ["'state' entry must be one JSON string"],
    ),
    (
        "checkpoint-state-not-json",
        run_dir(ckpt_members({"state.npy": npy(np.array("{epoch: 2"))})),
        RESUME,
        ["the training state is not valid JSON"],
    ),
    (
        "checkpoint-state-fields",
        run_dir(ckpt_members(state=lambda s: s.pop("rngs"))),
        RESUME,
        ["training state rngs", "damaged"],
    ),
    (
        "checkpoint-state-rng",
        run_dir(ckpt_members(state=lambda s: s["rngs"]["init"].update(bit_generator="MT19937"))),
        RESUME,
        ["training state rngs.init", "PCG64"],
    ),
    (
        "checkpoint-state-rng-missing",
        run_dir(ckpt_members(state=lambda s: s["rngs"].pop("shuffle"))),
        RESUME,
        ["training state rngs", "data, dropout, init, shuffle, split"],
    ),
    (
        "checkpoint-state-warnings",
        run_dir(ckpt_members(state=lambda s: s.update(warnings={"1": 7}))),
        RESUME,
        ["training state warnings"],
    ),
    (
        "checkpoint-state-schedule",
        run_dir(ckpt_members(state=lambda s: s["schedule"].update(lr="oops"))),
        RESUME,
        ["training state schedule"],
    ),
    (
        "checkpoint-nan",
        run_dir(lambda p: ckpt_members({"params.npy": npy(params_of(p) * np.float32(np.nan))})(p)),
        RESUME,
        ["params holds NaN or Inf"],
    ),
    # --- output
    (
        "output-dir-under-a-file",
        write("afile", "x"),
        ["train", XOR, "--set", "output.dir=afile/run"],
        ["afile/run", "cannot create the run directory", "Not a directory"],
    ),
    (
        "output-out-under-a-file",
        write("afile", "x"),
        ["train", XOR, "--out", "afile/sub/run"],
        ["afile/sub/run", "cannot create the run directory"],
    ),
    (
        "predict-output-exists",
        both(weights_bytes(lambda b: b), write("p.csv", "keep me\n")),
        ["predict", "-w", "w.npz", "--data", IRIS_CSV, "-o", "p.csv"],
        ["p.csv", "already exists", "--overwrite"],
    ),
    (
        "predict-output-dir-missing",
        weights_bytes(lambda b: b),
        ["predict", "-w", "w.npz", "--data", IRIS_CSV, "-o", "nodir/p.csv"],
        ["nodir/p.csv", "not written", "No such file or directory"],
    ),
    (
        "predict-output-disk-full",
        both(weights_bytes(lambda b: b), write("p.csv", "the earlier version\n"), disk_full),
        ["predict", "-w", "w.npz", "--data", IRIS_CSV, "-o", "p.csv", "--overwrite"],
        ["p.csv: not written", "No space left on device", "earlier version", "untouched"],
    ),
    # --- fixed splits from files (data.validation_path, data.test_path)
    (
        "split-file-missing",
        csv_case(
            "a,y\n1,0\n2,1\n", config("path: data.csv, target: y, validation: 0, test_path: t.csv")
        ),
        TRAIN,
        ["data.test_path", "t.csv", "not found"],
    ),
    (
        "split-file-missing-column",
        both(
            csv_case(
                "a,b,y\n1,2,0\n2,3,1\n",
                config("path: data.csv, target: y, validation: 0, test_path: t.csv"),
            ),
            write("t.csv", "a,y\n1,0\n"),
        ),
        TRAIN,
        ["data.test_path", "t.csv", "no feature column 'b'", "a, y"],
    ),
    (
        "split-file-missing-target",
        both(
            csv_case(
                "a,y\n1,0\n2,1\n", config("path: data.csv, target: y, validation_path: v.csv")
            ),
            write("v.csv", "a,z\n1,0\n"),
        ),
        TRAIN,
        ["data.validation_path", "v.csv", "no target column 'y'"],
    ),
    (
        "split-file-unknown-label",
        both(
            csv_case(
                "a,y\n1,0\n2,1\n",
                config("path: data.csv, target: y, validation: 0, test_path: t.csv"),
            ),
            write("t.csv", "a,y\n1,7\n"),
        ),
        TRAIN,
        ["data.test_path", "t.csv", "label 7", "training classes"],
    ),
    (
        "split-file-and-fraction",
        csv_case(
            "a,y\n1,0\n2,1\n", config("path: data.csv, target: y, test: 0.2, test_path: t.csv")
        ),
        TRAIN,
        ["data.test", "data.test_path", "t.csv", "0.2"],
    ),
    (
        "split-file-with-builtin",
        write("c.yaml", config("dataset: iris, validation_path: v.csv")),
        TRAIN,
        ["data.validation_path", "data.path", "built-in"],
    ),
    # --- IDX files (MNIST's format)
    (
        "idx-bad-magic",
        both(
            write("c.yaml", config("path: train-images-idx3-ubyte, validation: 0, test: 0")),
            write("train-images-idx3-ubyte", b"\x00\x01\x08\x03" + bytes(20)),
        ),
        TRAIN,
        ["train-images-idx3-ubyte", "not an IDX file", "00010803"],
    ),
    (
        "idx-truncated",
        both(
            write("c.yaml", config("path: train-images-idx3-ubyte.gz, validation: 0, test: 0")),
            write(
                "train-images-idx3-ubyte.gz",
                gzip.compress(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02" * 3 + bytes(7)),
            ),
        ),
        TRAIN,
        ["train-images-idx3-ubyte.gz", "truncated", "2 x 2 x 2", "24 bytes", "has 23"],
    ),
    (
        "idx-target-given",
        both(
            write(
                "c.yaml", config("path: train-images-idx3-ubyte, target: y, validation: 0, test: 0")
            ),
            write(
                "train-images-idx3-ubyte", b"\x00\x00\x08\x03" + b"\x00\x00\x00\x01" * 3 + bytes(1)
            ),
        ),
        TRAIN,
        ["train-images-idx3-ubyte", "data.target", "labels file"],
    ),
]


def run_file(name: str, edit: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """Edit another file of the run copied by run_dir (given its checkpoint's path)."""

    def change(ckpt: Path) -> None:
        p = ckpt.parent / name
        p.write_bytes(edit(p.read_bytes()))

    return change


def _cell_to(text: str) -> Callable[[bytes], bytes]:
    """metrics.csv with the first data row's second cell replaced by ``text``."""

    def edit(b: bytes) -> bytes:
        lines = b.decode().split("\n")
        cells = lines[1].split(",")
        cells[1] = text
        lines[1] = ",".join(cells)
        return "\n".join(lines).encode()

    return edit


LONG = "p" * 300
# Resuming from, and predicting into, broken or impossible paths.
RESUME_AND_OUTPUT = [
    (
        "resume-run-config-not-utf8",
        run_dir(run_file("config.yaml", lambda b: b + b"\xff\xfe")),
        RESUME,
        ["config.yaml", "UTF-8"],
    ),
    (
        "resume-metrics-not-a-number",
        run_dir(run_file("metrics.csv", _cell_to("abc"))),
        RESUME,
        ["metrics.csv", "cannot resume"],
    ),
    (
        "resume-metrics-extra-cells",
        run_dir(run_file("metrics.csv", _cell_to("1,2,3"))),
        RESUME,
        ["metrics.csv", "cannot resume"],
    ),
    (
        "resume-out-name-too-long",
        both(write("iris.yaml", IRIS_TEXT)),
        ["train", "iris.yaml", "--resume", "--out", LONG],
        ["no checkpoint.npz and config.yaml to resume from"],
    ),
    (
        "predict-output-name-too-long",
        weights_bytes(lambda b: b),
        ["predict", "-w", "w.npz", "--data", IRIS_CSV, "-o", LONG + ".csv"],
        ["not written", "too long"],
    ),
]


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root: a file's bytes, None for a directory."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            with _REAL_OPEN(p, "rb") as fh:  # not the fake open a row may have put in place
                out[os.path.relpath(p, root)] = fh.read()
    return out


@pytest.mark.parametrize(
    ("setup", "argv", "words"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES + RESUME_AND_OUTPUT],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    setup, argv, words, tmp_path, monkeypatch, capsys, trained
):
    setup(Ctx(tmp_path, monkeypatch, trained))
    before = tree(tmp_path)
    capsys.readouterr()
    code = main([str(a) for a in argv])
    monkeypatch.undo()  # the fake open and fsync end with the command
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    after = tree(tmp_path)
    assert sorted(after) == sorted(before), "files or directories appeared or vanished"
    assert after == before, "a file that was there before changed"
    assert not (tmp_path / "pwned").exists()


def test_the_table_has_one_row_per_id():
    ids = [c[0] for c in CASES + RESUME_AND_OUTPUT]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------- a full disk


@pytest.mark.parametrize("fail_at", [1, 2, 4, 6, 7])
def test_full_disk_keeps_earlier_files_whole_and_says_what_was_not_written(
    fail_at, tmp_path, monkeypatch, capsys
):
    """The fail_at-th file write of a 3-epoch run hits ENOSPC (1: config.yaml; then per epoch
    metrics.csv, weights.npz, checkpoint.npz). Each file on disk is then exactly the last
    version that was written whole; no temporary file is left; the message names the file."""
    real_fsync, real_replace = os.fsync, os.replace
    writes = {"n": 0}
    last_whole: dict[str, bytes] = {}

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            writes["n"] += 1
            if writes["n"] == fail_at:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    def replace(src, dst):
        real_replace(src, dst)
        last_whole[Path(dst).name] = Path(dst).read_bytes()

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    code = main(
        [
            "train",
            str(IRIS),
            "--quiet",
            "--out",
            "run",
            "--set",
            "training.epochs=3",
            "--set",
            "output.save_interval_s=0",
        ]
    )
    monkeypatch.undo()
    err = capsys.readouterr().err
    order = ["config.yaml", "metrics.csv", "weights.npz", "checkpoint.npz"]
    failed = order[0] if fail_at == 1 else order[1 + (fail_at - 2) % 3]
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert f"run/{failed}: not written (No space left on device)" in err
    run = tmp_path / "run"  # when config.yaml failed the directory may be gone, or empty
    on_disk = (
        {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lock"} if run.exists() else {}
    )
    assert on_disk == last_whole  # every file whole: the last complete version, no .tmp files
    if "weights.npz" in on_disk:
        spec, arrays = runs.load_weights(tmp_path / "run" / "weights.npz")
        assert spec.epoch >= 1


def test_an_existing_run_directory_is_never_overwritten(tmp_path, capsys):
    args = ["train", str(XOR), "--quiet", "--out", "run", "--set", "training.epochs=2"]
    assert main(args) == 0
    first = tree(tmp_path / "run")
    assert main(args) == 0
    assert tree(tmp_path / "run") == first
    assert (tmp_path / "run-2" / "weights.npz").is_file()


# ---------------------------------------------------------------------------- a huge claim in a tiny file


def _huge_file(tmp_path: Path, trained: Path, agree: bool) -> Path:
    """weights.npz whose W0 header claims 20000 x 20000 float64 (3.2 GB) over 64 bytes of data,
    deflated to a file of a few kB; with ``agree`` the spec claims the same network."""
    items = members(trained / "weights.npz")
    items["W0.npy"] = huge_w0()
    if agree:
        spec = spec_of(trained)
        spec.update(sizes=[20000, 20000, 3], loss="mse", task="regression", classes=None)
        del spec["feature_names"], spec["columns"]
        items["spec.npy"] = npy(np.array(json.dumps(spec)))
        items["b0.npy"] = npy(np.zeros(20000, np.float32))
        items["W1.npy"] = npy(np.zeros((20000, 3), np.float32))
        items["x_mean.npy"] = npy(np.zeros(20000))
        items["x_scale.npy"] = npy(np.ones(20000))
    p = tmp_path / "huge.npz"
    write_zip(p, list(items.items()), zipfile.ZIP_DEFLATED)
    return p


@pytest.mark.parametrize("agree", [False, True], ids=["spec-disagrees", "spec-agrees"])
def test_huge_claim_in_a_tiny_file_is_refused_without_the_memory(tmp_path, trained, agree):
    p = _huge_file(tmp_path, trained, agree)
    assert p.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(WeightsError) as e:
            runs.load_weights(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000, peak  # nothing near the 3.2 GB the header claims
    msg = str(e.value)
    if agree:  # the spec allows it, so the data is read as it arrives: 64 bytes, then the end
        assert "W0 is truncated (64 of 3200000000 bytes" in msg
    else:  # refused from the header alone, before any data
        assert "W0 has shape (20000, 20000), the spec says (4, 16)" in msg


def test_weights_are_read_without_numpy_load(trained, monkeypatch):
    """The loader never goes through np.load (which trusts a header's size): poison it."""

    def poisoned(*a, **k):
        raise AssertionError("np.load was called")

    monkeypatch.setattr(np, "load", poisoned)
    spec, arrays = runs.load_weights(trained / "weights.npz")
    assert arrays["W0"].shape == (4, 16)


def test_a_savez_compressed_weights_file_loads(tmp_path, trained):
    items = members(trained / "weights.npz")
    write_zip(tmp_path / "c.npz", list(items.items()), zipfile.ZIP_DEFLATED)
    spec, arrays = runs.load_weights(tmp_path / "c.npz")
    _, ref = runs.load_weights(trained / "weights.npz")
    for k in ref:
        np.testing.assert_array_equal(arrays[k], ref[k])


def test_a_corrupt_deflate_stream_is_a_clean_error(tmp_path, trained):
    items = members(trained / "weights.npz")
    p = tmp_path / "c.npz"
    write_zip(p, list(items.items()), zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(p) as zf:
        info = zf.getinfo("W0.npy")
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    b = bytearray(p.read_bytes())
    for i in range(start + 2, start + 40):
        b[i] ^= 0xFF
    p.write_bytes(bytes(b))
    with pytest.raises(WeightsError, match="not a readable weights file"):
        runs.load_weights(p)
    assert zlib  # zlib.error is among what the loader turns into a WeightsError


# ---------------------------------------------------------------------------- property-based

KEYS = [
    "name", "seed", "loss", "data", "data.dataset", "data.path", "data.target",
    "data.features", "data.validation", "data.test", "data.standardize", "data.dropna",
    "data.n_samples", "data.noise", "model", "model.layers", "model.init", "model.init_scale",
    "model.dtype", "model.layers[0].units", "model.layers[0].activation",
    "model.layers[0].dropout", "model.layers[0].residual", "model.layers[-1].units",
    "model.layers[1].activation", "optimizer", "optimizer.name", "optimizer.lr",
    "optimizer.momentum", "optimizer.nesterov", "optimizer.betas", "optimizer.eps",
    "optimizer.weight_decay", "training", "training.epochs", "training.batch_size",
    "training.shuffle", "training.early_stopping", "training.early_stopping.monitor",
    "training.early_stopping.patience", "training.lr_schedule", "training.lr_schedule.name",
    "training.lr_schedule.step_size", "training.lr_schedule.milestones", "training.warmup",
    "training.warmup.total_iters", "training.clip_grad_norm", "training.on_divergence",
    "output", "output.dir", "output.save_interval_s", "optimizr", "model.layers[3]",
]  # fmt: skip
WORDS = [
    "sgd", "adam", "adamw", "rmsprop", "full", "relu", "tanh", "softmax", "sigmoid", "identity",
    "mse", "cross_entropy", "binary_cross_entropy", "xor", "iris", "moons", "float64", "he",
    "step", "multistep", "cosine", "reduce_on_plateau", "val_loss", "train_accuracy", "stop",
    "rollback", "data.csv", "",
]  # fmt: skip
SMALL_INTS = st.one_of(
    st.integers(-3, 40), st.sampled_from([0, 1, 2, 100_000, 100_001, 10_000_001, 2**63, -(2**70)])
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    SMALL_INTS,
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(WORDS),
    st.text(max_size=6),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["name", "units", "activation", "lr", "dataset", "x"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=6,
)
KEY_VALUE = st.tuples(
    st.sampled_from(KEYS),
    st.one_of(SCALARS.map(json.dumps), SCALARS.map(str), st.text(max_size=10)),
).map("=".join)
SETS = st.one_of(KEY_VALUE, KEY_VALUE, st.text(max_size=20))  # mostly KEY=VALUE, some noise


def _put(d: dict, key: str, value) -> None:
    """Put value at a dotted key path, making mappings on the way; skip paths that do not fit."""
    parts = [int(p) if p.lstrip("-").isdigit() else p for p in key.replace("]", "").split("[")]
    parts = [q for p in parts for q in (p.split(".") if isinstance(p, str) else [p]) if q != ""]
    node = d
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                return
        elif not isinstance(node, dict):
            return
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and not isinstance(node.get(part), dict | list):
                node[part] = {}
            node = node[part]


BASES = {p.name: yaml.safe_load(p.read_text()) for p in (XOR, IRIS)}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    base=st.sampled_from(sorted(BASES)),
    changes=st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=4),
    sets=st.lists(SETS, max_size=3),
)
def test_random_configs_and_sets_end_in_success_or_a_clean_exit_2(
    base, changes, sets, tmp_path, capsys
):
    d = copy.deepcopy(BASES[base])
    for key, value in changes:
        _put(d, key, value)
    path = tmp_path / "prop.yaml"
    path.write_text(yaml.safe_dump(d, allow_unicode=True))
    capsys.readouterr()
    argv = ["validate", str(path), "--json"]
    for s in sets:
        argv += ["--set", s]
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()
