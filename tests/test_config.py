"""The YAML config: defaults, validation errors, safe parsing, --set overrides, digest.

Every ConfigError is one line, ``FILE: key.path: message (got VALUE)``; the tests check
the key path, the words a user needs and the bad value, against messages and values
written out by hand here.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backprop_cli.config import (
    AdamConfig,
    Config,
    SGDConfig,
    apply_overrides,
    load_config,
    parse_yaml,
    read_config_file,
    validate_config,
)
from backprop_cli.errors import ConfigError

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"

MINIMAL = """\
data: {dataset: moons}
model:
  layers:
    - {units: 8, activation: relu}
    - {units: 2, activation: softmax}
"""


def base() -> dict:
    """The MINIMAL config as a plain dict, written out independently of the YAML."""
    return {
        "data": {"dataset": "moons"},
        "model": {
            "layers": [
                {"units": 8, "activation": "relu"},
                {"units": 2, "activation": "softmax"},
            ]
        },
    }


def one_line_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and "\r" not in msg, msg
    return msg


# ---------------------------------------------------------------------------- valid configs


def test_minimal_config_fills_documented_defaults(write_config):
    c = load_config(write_config(MINIMAL))
    assert isinstance(c, Config)
    assert isinstance(c.optimizer, AdamConfig)
    assert c.optimizer.name == "adam"
    assert c.optimizer.lr == 1e-3
    assert c.optimizer.betas == [0.9, 0.999]
    assert c.optimizer.eps == 1e-8
    assert c.optimizer.weight_decay == 0.0
    assert c.training.epochs == 30
    assert c.training.batch_size == 32
    assert c.batch_size == 32
    assert c.training.shuffle is True
    assert c.model.init == "he"
    assert c.model.dtype == "float32"
    assert c.data.validation == 0.15
    assert c.data.test == 0.15
    assert c.data.standardize is True
    assert c.data.dataset == "moons" and c.data.path is None
    assert c.loss == "cross_entropy"
    assert c.task == "classification"
    assert c.seed == 0
    assert [(layer.units, layer.activation) for layer in c.model.layers] == [
        (8, "relu"),
        (2, "softmax"),
    ]


def test_resolved_contains_every_default(write_config):
    r = load_config(write_config(MINIMAL)).resolved()
    assert r["optimizer"] == {
        "name": "adam",
        "lr": 0.001,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": False,
        "decay_biases": True,
    }
    assert r["training"] == {
        "epochs": 30,
        "batch_size": 32,
        "shuffle": True,
        "early_stopping": None,
        "lr_schedule": None,
        "warmup": None,
        "clip_grad_norm": None,
        "clip_grad_value": None,
        "on_divergence": "stop",
        "max_rollbacks": 3,
        "class_weight": None,
        "threads": None,
    }


def test_optimizer_shorthand_sgd(write_config):
    c = load_config(write_config(MINIMAL + "optimizer: sgd\n"))
    assert isinstance(c.optimizer, SGDConfig)
    assert c.optimizer.name == "sgd"
    assert c.optimizer.lr == 1e-3
    assert c.optimizer.momentum == 0.0
    assert c.optimizer.nesterov is False


def test_full_batch_and_regression_task(write_config):
    text = MINIMAL.replace("{units: 2, activation: softmax}", "{units: 1, activation: identity}")
    c = load_config(write_config(text + "loss: mse\ntraining: {batch_size: full}\n"))
    assert c.training.batch_size == "full"
    assert c.batch_size is None
    assert c.task == "regression"


def test_exponent_without_dot_is_a_number(write_config):
    c = load_config(write_config(MINIMAL + "optimizer: {name: adam, lr: 1e-3}\n"))
    assert c.optimizer.lr == 0.001


# ---------------------------------------------------------------------------- bad configs


def _set(path, value):
    def mutate(d):
        node = d
        for part in path[:-1]:
            if isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                node = node[part]
        node[path[-1]] = value

    return mutate


def _del(key):
    def mutate(d):
        del d[key]

    return mutate


def _bce_output(last):
    def mutate(d):
        d["loss"] = "binary_cross_entropy"
        d["model"]["layers"][-1] = last

    return mutate


BAD = [
    pytest.param(
        _set(["optimizr"], "sgd"),
        ["optimizr", "unknown key", "did you mean 'optimizer'"],
        id="top-typo",
    ),
    pytest.param(
        _set(["model", "layers", 0, "unit"], 8),
        ["model.layers[0].unit", "unknown key", "'units'"],
        id="layer-unit",
    ),
    pytest.param(
        _set(["optimizer"], {"name": "adam", "lrr": 0.1}),
        ["optimizer.lrr", "unknown key", "'lr'"],
        id="optimizer-lrr",
    ),
    pytest.param(
        _set(["data", "datset"], "moons"),
        ["data.datset", "unknown key", "'dataset'"],
        id="data-typo",
    ),
    pytest.param(
        _set(["optimizer"], {"name": "adam", "lr": -0.1}),
        ["optimizer.lr", "must be > 0", "-0.1"],
        id="lr-negative",
    ),
    pytest.param(
        _set(["optimizer"], {"name": "sgd", "lr": 0}),
        ["optimizer.lr", "must be > 0", "(got 0)"],
        id="lr-zero",
    ),
    pytest.param(
        _set(["optimizer"], {"name": "adamm"}),
        ["optimizer.name", "'adamm'", "did you mean 'adam'", "sgd", "rmsprop", "adamw"],
        id="optimizer-name",
    ),
    pytest.param(
        _set(["optimizer"], "adamm"),
        ["optimizer.name", "'adamm'", "did you mean 'adam'"],
        id="optimizer-shorthand-name",
    ),
    pytest.param(
        _set(["model", "layers", 0, "activation"], "rleu"),
        ["model.layers[0].activation", "'rleu'", "did you mean 'relu'", "softmax"],
        id="activation",
    ),
    pytest.param(
        _set(["loss"], "crossentropy"),
        ["loss", "'crossentropy'", "did you mean 'cross_entropy'"],
        id="loss-name",
    ),
    pytest.param(
        _set(["data", "dataset"], "moon"),
        ["data.dataset", "'moon'", "did you mean 'moons'", "spirals"],
        id="dataset",
    ),
    pytest.param(
        _set(["data", "path"], "train.csv"),
        ["data.dataset", "data.path", "exactly one"],
        id="data-both",
    ),
    pytest.param(
        _set(["data"], {"validation": 0.1}),
        ["data.dataset", "data.path", "exactly one"],
        id="data-neither",
    ),
    pytest.param(
        _set(["data"], {"dataset": "moons", "validation": 0.5, "test": 0.5}),
        ["data.validation", "data.test", "< 1", "0.5 + 0.5"],
        id="val+test",
    ),
    pytest.param(
        _set(["data"], {"dataset": "moons", "validation": 0.7, "test": 0.4}),
        ["data.validation", "data.test", "< 1"],
        id="val+test-over",
    ),
    pytest.param(
        _set(["training"], {"epochs": 0}), ["training.epochs", "> 0", "(got 0)"], id="epochs-0"
    ),
    pytest.param(
        _set(["training"], {"batch_size": 0}), ["training.batch_size", "> 0", "(got 0)"], id="bs-0"
    ),
    pytest.param(
        _set(["training"], {"batch_size": -3}),
        ["training.batch_size", "> 0", "(got -3)"],
        id="bs-neg",
    ),
    pytest.param(
        _set(["training"], {"batch_size": "half"}),
        ["training.batch_size", "integer", "'half'"],
        id="bs-half",
    ),
    pytest.param(
        _set(["model", "layers", 0, "units"], 0),
        ["model.layers[0].units", "> 0", "(got 0)"],
        id="units-0",
    ),
    pytest.param(
        _set(["model", "layers", 1, "units"], 2.5),
        ["model.layers[1].units", "integer", "2.5"],
        id="units-float",
    ),
    pytest.param(
        _set(["model", "layers", 0, "units"], "3"),
        ["model.layers[0].units", "integer", "'3'"],
        id="units-str",
    ),
    pytest.param(
        _set(["training"], {"shuffle": "yes"}),
        ["training.shuffle", "true or false", "'yes'"],
        id="shuffle-str",
    ),
    pytest.param(
        _set(["optimizer"], {"name": "adam", "betas": [0.9, 1.0]}),
        ["optimizer.betas[1]", "[0, 1)", "1.0"],
        id="beta2-1",
    ),
    pytest.param(
        _set(["optimizer"], {"name": "adamw", "betas": [-0.1, 0.999]}),
        ["optimizer.betas[0]", "[0, 1)", "-0.1"],
        id="beta1-neg",
    ),
    pytest.param(
        _set(["optimizer"], {"name": "adam", "betas": [0.9]}),
        ["optimizer.betas", "at least 2"],
        id="betas-short",
    ),
    pytest.param(
        _set(["optimizer"], {"name": "sgd", "nesterov": True}),
        ["optimizer.nesterov", "momentum > 0"],
        id="nesterov-no-momentum",
    ),
    pytest.param(
        _bce_output({"units": 1, "activation": "softmax"}),
        ["model.layers[1].activation", "binary_cross_entropy", "sigmoid output", "'softmax'"],
        id="bce-softmax",
    ),
    pytest.param(
        _set(["data", "task"], "regression"),
        ["data.task", "regression", "cross_entropy classifies", "mse"],
        id="ce-regression",
    ),
    pytest.param(
        _set(["data", "task"], "clasification"),
        ["data.task", "classification", "regression"],
        id="task-typo",
    ),
    pytest.param(
        _set(["model", "layers", 1, "activation"], "sigmoid"),
        ["model.layers[1].activation", "cross_entropy", "softmax", "'sigmoid'"],
        id="ce-sigmoid",
    ),
    pytest.param(_set(["model", "layers"], []), ["model.layers", "at least 1"], id="layers-empty"),
    pytest.param(_del("model"), ["model", "missing"], id="model-missing"),
    pytest.param(_del("data"), ["data", "missing"], id="data-missing"),
    pytest.param(_set(["seed"], -1), ["seed", ">= 0", "(got -1)"], id="seed-negative"),
    pytest.param(
        _set(["model", "dtype"], "float16"), ["model.dtype", "'float16'", "float64"], id="dtype"
    ),
    # rows written as YAML text, so the file itself is what is being read
    pytest.param(
        MINIMAL + 'training: {shuffle: "yes"}\n', ["training.shuffle", "'yes'"], id="yaml-shuffle"
    ),
    pytest.param(
        MINIMAL.replace("units: 8", "units: 2.5"), ["model.layers[0].units", "2.5"], id="yaml-units"
    ),
    pytest.param(
        MINIMAL + "optimizer: {name: sgd, lr: -0.1}\n",
        ["optimizer.lr", "must be > 0", "-0.1"],
        id="yaml-lr",
    ),
]


@pytest.mark.parametrize(("bad", "words"), BAD)
def test_bad_config_is_one_line_with_path_and_words(write_config, bad, words):
    if isinstance(bad, str):
        path = write_config(bad)
    else:
        d = base()
        bad(d)
        path = write_config(yaml.safe_dump(d))
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    msg = one_line_error(excinfo)
    assert msg.startswith(f"{path}: "), msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


def test_validate_config_prefixes_the_source():
    d = base()
    d["training"] = {"epochs": -5}
    with pytest.raises(ConfigError) as excinfo:
        validate_config(d, "some/where.yaml")
    msg = one_line_error(excinfo)
    assert msg.startswith("some/where.yaml: training.epochs: ")
    assert "(got -5)" in msg


def test_unknown_key_without_a_close_match_lists_the_keys():
    d = base()
    d["zzzzzz"] = 1
    with pytest.raises(ConfigError) as excinfo:
        validate_config(d, "f.yaml")
    msg = one_line_error(excinfo)
    assert "zzzzzz" in msg and "did you mean" not in msg
    for key in ("data", "model", "loss", "optimizer", "training", "output"):
        assert key in msg


# ---------------------------------------------------------------------------- parse / read errors


def test_yaml_syntax_error_names_line_and_column(write_config):
    # line 3 is "loss: a: b"; the second ':' is its 8th character
    path = write_config("name: x\nseed: 1\nloss: a: b\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    msg = one_line_error(excinfo)
    assert msg.startswith(f"{path}: line 3, column 8: "), msg


def test_duplicate_key_refused(write_config):
    path = write_config(MINIMAL + "optimizer: {name: adam, lr: 0.1, lr: 0.2}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    msg = one_line_error(excinfo)
    assert msg.startswith(f"{path}: line 6, ")
    assert "duplicate key 'lr'" in msg


def test_duplicate_top_level_key_refused(write_config):
    path = write_config(MINIMAL + "seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert "duplicate key 'seed'" in one_line_error(excinfo)


@pytest.mark.parametrize(
    "text",
    [
        '!!python/object/apply:os.system ["touch pwned"]\n',
        MINIMAL + 'name: !!python/object/apply:os.system ["touch pwned"]\n',
    ],
    ids=["top", "value"],
)
def test_python_tags_refused_and_not_run(write_config, tmp_path, text):
    path = write_config(text)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    msg = one_line_error(excinfo)
    assert msg.startswith(f"{path}: line ")
    assert "python/object/apply" in msg
    assert not (tmp_path / "pwned").exists()
    assert not Path("pwned").exists()


def test_python_tag_in_override_refused(write_config, tmp_path):
    with pytest.raises(ConfigError):
        load_config(write_config(MINIMAL), ['name=!!python/object/apply:os.system ["touch pwned"]'])
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("text", ["", "\n# only a comment\n"], ids=["empty", "comment"])
def test_empty_file(write_config, text):
    path = write_config(text)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    msg = one_line_error(excinfo)
    assert msg.startswith(f"{path}: ") and "empty" in msg


def test_top_level_list(write_config):
    path = write_config("- data\n- model\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    msg = one_line_error(excinfo)
    assert msg.startswith(f"{path}: ") and "mapping" in msg and "list" in msg


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    msg = one_line_error(excinfo)
    assert msg.startswith(f"{path}: ") and "not found" in msg


def test_directory(tmp_path):
    d = tmp_path / "conf.yaml"
    d.mkdir()
    with pytest.raises(ConfigError) as excinfo:
        read_config_file(d)
    msg = one_line_error(excinfo)
    assert msg.startswith(f"{d}: ") and "directory" in msg


def test_not_utf8(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes(MINIMAL.encode() + b"name: caf\xe9\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(p)
    assert "UTF-8" in one_line_error(excinfo)


def test_parse_yaml_returns_plain_data():
    assert parse_yaml("a: [1, 2.5, true, null, x]\n", "s") == {"a": [1, 2.5, True, None, "x"]}


def test_control_character_error_is_one_line(tmp_path):
    p = tmp_path / "ctl.yaml"
    p.write_bytes(MINIMAL.encode() + b"name: a\x07b\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(p)
    one_line_error(excinfo)


def test_unknown_key_with_newline_is_one_line(write_config):
    path = write_config(MINIMAL + '"bad\\nkey": 1\n')
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    one_line_error(excinfo)


# ---------------------------------------------------------------------------- --set overrides


def test_override_dotted_path(write_config):
    c = load_config(
        write_config(MINIMAL + "optimizer: adam\n"),
        ["optimizer.lr=0.05", "training.epochs=7", "data.dataset=circles", "seed=3"],
    )
    assert c.optimizer.lr == 0.05
    assert c.training.epochs == 7
    assert c.data.dataset == "circles"
    assert c.seed == 3


@pytest.mark.parametrize("key", ["model.layers[0].units", "model.layers.0.units"])
def test_override_list_index(write_config, key):
    c = load_config(write_config(MINIMAL), [f"{key}=7"])
    assert [layer.units for layer in c.model.layers] == [7, 2]


def test_override_values_are_yaml_scalars(write_config):
    c = load_config(
        write_config(MINIMAL + "optimizer: {name: adam}\n"),
        [
            "training.batch_size=full",
            "optimizer.betas=[0.8, 0.9]",
            "training.shuffle=false",
            "model.dtype=float64",
        ],
    )
    assert c.training.batch_size == "full" and c.batch_size is None
    assert c.optimizer.betas == [0.8, 0.9]
    assert c.training.shuffle is False
    assert c.model.dtype == "float64"


def test_override_nesterov_bool(write_config):
    c = load_config(
        write_config(MINIMAL + "optimizer: {name: sgd, momentum: 0.9}\n"),
        ["optimizer.nesterov=true"],
    )
    assert c.optimizer.nesterov is True


def test_apply_overrides_on_plain_dict():
    d = {"optimizer": "sgd", "model": {"layers": [{"units": 3}]}}
    out = apply_overrides(
        d, ["optimizer.momentum=0.9", "training.epochs=5", "model.layers[0].units=4"]
    )
    assert out == {
        "optimizer": {"name": "sgd", "momentum": 0.9},
        "model": {"layers": [{"units": 4}]},
        "training": {"epochs": 5},
    }


def test_override_creates_section_from_optimizer_shorthand(write_config):
    c = load_config(write_config(MINIMAL + "optimizer: sgd\n"), ["optimizer.momentum=0.9"])
    assert isinstance(c.optimizer, SGDConfig)
    assert c.optimizer.momentum == 0.9
    assert c.optimizer.lr == 1e-3


def test_override_lr_on_default_optimizer(write_config):
    c = load_config(write_config(MINIMAL), ["optimizer.lr=0.05"])
    assert c.optimizer.name == "adam"
    assert c.optimizer.lr == 0.05


def test_override_creates_missing_section(write_config):
    c = load_config(write_config(MINIMAL), ["output.dir=runs/x"])
    assert c.output.dir == "runs/x"


def test_override_missing_equals(write_config):
    with pytest.raises(ConfigError) as excinfo:
        load_config(write_config(MINIMAL), ["optimizer.lr"])
    msg = one_line_error(excinfo)
    assert "optimizer.lr" in msg and "KEY=VALUE" in msg


def test_override_empty_key(write_config):
    with pytest.raises(ConfigError) as excinfo:
        load_config(write_config(MINIMAL), ["=3"])
    assert "empty key" in one_line_error(excinfo)


@pytest.mark.parametrize(
    "key", ["model.layers[5].units", "model.layers.5.units", "model.layers[2]"]
)
def test_override_index_out_of_range(write_config, key):
    with pytest.raises(ConfigError) as excinfo:
        load_config(write_config(MINIMAL), [f"{key}=3"])
    msg = one_line_error(excinfo)
    assert key in msg and "no list item" in msg


def test_override_bad_value_is_validated(write_config):
    path = write_config(MINIMAL + "optimizer: {name: adam, lr: 0.01}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, ["optimizer.lr=-1"])
    msg = one_line_error(excinfo)
    assert msg.startswith(f"{path}: optimizer.lr: ")
    assert "must be > 0" in msg and "(got -1)" in msg


def test_override_unknown_key_did_you_mean(write_config):
    with pytest.raises(ConfigError) as excinfo:
        load_config(write_config(MINIMAL), ["training.epoch=5"])
    msg = one_line_error(excinfo)
    assert "training.epoch" in msg and "did you mean 'epochs'" in msg


def test_override_unknown_top_level_did_you_mean(write_config):
    with pytest.raises(ConfigError) as excinfo:
        load_config(write_config(MINIMAL), ["optimizr.lr=0.1"])
    assert "did you mean 'optimizer'" in one_line_error(excinfo)


def test_override_yaml_syntax_error(write_config):
    with pytest.raises(ConfigError) as excinfo:
        load_config(write_config(MINIMAL), ["optimizer.betas=[0.8"])
    msg = one_line_error(excinfo)
    assert msg.startswith("--set optimizer.betas: line 1, ")


def test_overrides_do_not_touch_the_file(write_config):
    path = write_config(MINIMAL)
    load_config(path, ["training.epochs=3"])
    assert path.read_text() == MINIMAL
    assert load_config(path).training.epochs == 30


# ---------------------------------------------------------------------------- digest


def test_digest_same_config_same_digest(write_config):
    a = load_config(write_config(MINIMAL, "a.yaml"))
    b = load_config(write_config(MINIMAL, "b.yaml"))
    assert a.digest() == b.digest()
    assert re.fullmatch(r"[0-9a-f]{64}", a.digest())


def test_digest_changes_with_lr(write_config):
    a = load_config(write_config(MINIMAL + "optimizer: {name: adam, lr: 0.001}\n", "a.yaml"))
    b = load_config(write_config(MINIMAL + "optimizer: {name: adam, lr: 0.002}\n", "b.yaml"))
    assert a.digest() != b.digest()


def test_digest_ignores_key_order_and_explicit_defaults(write_config):
    reordered = """\
optimizer: {lr: 0.001, name: adam}
model:
  layers:
    - {activation: relu, units: 8}
    - {activation: softmax, units: 2}
  dtype: float32
data: {standardize: true, dataset: moons}
training: {shuffle: true, epochs: 30}
"""
    a = load_config(write_config(MINIMAL, "a.yaml"))
    b = load_config(write_config(reordered, "b.yaml"))
    assert a.digest() == b.digest()


# ---------------------------------------------------------------------------- property-based

KEYS = [
    "name", "seed", "loss", "data.dataset", "data.path", "data.target", "data.features",
    "data.validation", "data.test", "data.standardize", "data.dropna", "data.n_samples",
    "data.noise", "model.layers", "model.init", "model.init_scale", "model.dtype",
    "model.layers[0].units", "model.layers[1].activation", "model.layers.1.units",
    "model.layers[0]", "optimizer", "optimizer.name", "optimizer.lr", "optimizer.momentum",
    "optimizer.nesterov", "optimizer.dampening", "optimizer.betas", "optimizer.betas[0]",
    "optimizer.eps", "optimizer.alpha", "optimizer.weight_decay", "training",
    "training.epochs", "training.batch_size", "training.shuffle", "output.dir", "optimizr",
    "optimizer.lrr", "model.layers[0].unit", "model.layers[4].units", "training.epoch",
]  # fmt: skip
WORDS = [
    "sgd", "adam", "adamw", "rmsprop", "full", "relu", "softmax", "sigmoid", "identity",
    "mse", "cross_entropy", "binary_cross_entropy", "moons", "xor", "iris", "float64", "he",
]  # fmt: skip
printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    printable,
    st.sampled_from(WORDS),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["name", "units", "activation", "lr", "x"]), inner, max_size=3
        ),
    ),
    max_leaves=6,
)


def _set_path(d: dict, key: str, value) -> None:
    """Put value at a dotted key path, making mappings on the way; skip paths that do not fit."""
    parts = [int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", key) if p]
    node = d
    for part in parts[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return
            node = node[part]
        else:
            if not isinstance(node, dict):
                return
            if not isinstance(node.get(part), dict | list):
                node[part] = {}
            node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        if isinstance(node, list) and last < len(node):
            node[last] = value
    elif isinstance(node, dict):
        node[last] = value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(st.tuples(st.sampled_from(KEYS), values), max_size=4),
    sets=st.lists(
        st.tuples(
            st.sampled_from(KEYS), st.one_of(scalars.map(repr), printable, st.sampled_from(WORDS))
        ),
        max_size=3,
    ),
)
def test_validate_never_raises_anything_but_one_line_config_error(mutations, sets):
    d = copy.deepcopy(base())
    for key, value in mutations:
        _set_path(d, key, value)
    try:
        apply_overrides(d, [f"{k}={v}" for k, v in sets])
        result = validate_config(d, "prop.yaml")
    except ConfigError as e:
        assert "\n" not in str(e), str(e)
        assert str(e).strip()
        return
    assert isinstance(result, Config)


# ---------------------------------------------------------------------------- shipped configs


@pytest.mark.parametrize("path", sorted(CONFIGS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_loads(path):
    c = load_config(path)
    assert isinstance(c, Config)
    assert len(c.model.layers) >= 1


def test_there_are_shipped_configs():
    assert len(list(CONFIGS_DIR.glob("*.yaml"))) >= 5


def test_init_and_decay_keys_reach_the_network_and_the_optimizer(write_config):
    """model.init: lecun, model.bias_init: normal with its scale, optimizer.decay_biases:
    false (the weights' ranges decayed, the biases' not)."""
    import numpy as np

    from backprop_cli.data import streams
    from backprop_cli.training import build_optimizer, setup

    text = MINIMAL + (
        "  init: lecun\n  bias_init: normal\n  bias_init_scale: 0.5\n  dtype: float64\n"
        "optimizer: {name: sgd, lr: 0.1, weight_decay: 0.01, decay_biases: false}\n"
    )
    cfg = load_config(write_config(text))
    assert (cfg.model.bias_init, cfg.model.bias_init_scale) == ("normal", 0.5)
    s = setup(cfg, "config")
    rng = streams(cfg.seed)["init"]  # the run's init stream: W^l ~ N(0, 1/fan_in), then b^l
    for W, b in zip(s.net.W, s.net.b, strict=True):
        assert np.array_equal(W, rng.normal(0.0, (1 / W.shape[0]) ** 0.5, W.shape))
        assert np.array_equal(b, rng.normal(0.0, 0.5, b.shape))
    opt = build_optimizer(cfg, s.net)
    assert [(r.start, r.stop, d) for r, d in opt._runs] == [
        (0, 16, True),
        (16, 24, False),
        (24, 40, True),
        (40, 42, False),
    ]
    default = load_config(write_config(MINIMAL + "optimizer: {name: sgd, weight_decay: 0.1}\n"))
    assert build_optimizer(default, setup(default, "config").net).decays_everything


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("model.bias_init", "ones", ["model.bias_init", "zeros", "normal"]),
        ("model.bias_init_scale", "0", ["model.bias_init_scale", "must be > 0"]),
        ("model.init", "lecunn", ["model.init", "lecun"]),
        ("optimizer.decay_biases", "maybe", ["optimizer.decay_biases"]),
    ],
)
def test_init_and_decay_keys_are_validated(write_config, key, value, words):
    with pytest.raises(ConfigError) as e:
        load_config(write_config(MINIMAL), [f"{key}={value}"])
    msg = one_line_error(e)
    for w in words:
        assert w in msg, msg
