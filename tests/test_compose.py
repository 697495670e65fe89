"""Config composition: `backprop train base.yaml experiment.yaml`. Later files win, mappings
merge, lists and scalars replace, a section named by another optimizer or schedule starts
afresh; --set applies last; an error names the file that set the key."""

from __future__ import annotations

import pytest
import yaml

from backprop_cli.config import compose, load_config, optimizer_defaults
from backprop_cli.errors import ConfigError

from .conftest import CONFIGS, assert_one_line_error, run_cli

BASE = """\
name: base
seed: 3
data: {dataset: xor, validation: 0, test: 0}
model:
  layers:
    - {units: 8, activation: tanh}
    - {units: 8, activation: tanh}
    - {units: 1, activation: sigmoid}
loss: binary_cross_entropy
optimizer: {name: adam, lr: 0.01, betas: [0.8, 0.99]}
training: {epochs: 5, batch_size: 4}
"""


@pytest.fixture
def files(tmp_path):
    def write(**texts: str):
        out = []
        for name, text in texts.items():
            path = tmp_path / f"{name}.yaml"
            path.write_text(text)
            out.append(path)
        return out

    return write


def test_mappings_merge_key_by_key(files):
    cfg = load_config(files(base=BASE, exp="training: {epochs: 9}\ndata: {validation: 0.25}\n"))
    assert cfg.training.epochs == 9 and cfg.training.batch_size == 4  # merged, not replaced
    assert cfg.data.dataset == "xor" and cfg.data.validation == 0.25
    assert cfg.name == "base" and cfg.seed == 3


def test_lists_replace_whole(files):
    exp = "model:\n  layers:\n    - {units: 3, activation: relu}\n    - {units: 1, activation: sigmoid}\n"
    cfg = load_config(files(base=BASE, exp=exp))
    assert [(layer.units, layer.activation) for layer in cfg.model.layers] == [
        (3, "relu"),
        (1, "sigmoid"),
    ]


def test_later_files_win_and_set_applies_last(files):
    paths = files(base=BASE, a="seed: 4\nname: a\n", b="seed: 5\n")
    cfg = load_config(paths)
    assert (cfg.seed, cfg.name) == (5, "a")
    assert load_config(paths, ["seed=6"]).seed == 6
    assert load_config(list(reversed(paths[1:])) + [paths[0]]).seed == 3  # order matters


def test_null_replaces_a_mapping(files):
    paths = files(
        base=BASE,
        a="training: {early_stopping: {patience: 2}}\n",
        b="training: {early_stopping: null}\n",
    )
    assert load_config(paths[:2]).training.early_stopping.patience == 2
    assert load_config(paths).training.early_stopping is None


def test_the_same_optimizer_merges_another_one_starts_afresh(files):
    same = load_config(files(base=BASE, exp="optimizer: {lr: 0.5}\n"))
    assert same.optimizer.name == "adam" and same.optimizer.lr == 0.5
    assert tuple(same.optimizer.betas) == (0.8, 0.99)  # the base's, kept
    other = load_config(files(base=BASE, exp2="optimizer: {name: sgd, momentum: 0.9}\n"))
    assert other.optimizer.name == "sgd" and other.optimizer.momentum == 0.9
    assert other.optimizer.lr == optimizer_defaults("sgd")["lr"] != 0.01  # not adam's, from base
    short = load_config(files(base=BASE, exp3="optimizer: sgd\n"))
    assert short.optimizer.name == "sgd"
    back = load_config(files(base=BASE, a="optimizer: sgd\n", b="optimizer: {lr: 0.2}\n"))
    assert (back.optimizer.name, back.optimizer.lr) == ("sgd", 0.2)  # the string is {name: sgd}


@pytest.mark.parametrize(
    "texts, blamed, words",
    [
        ({"exp": "training: {epochz: 3}\n"}, "exp", ["training.epochz", "unknown key", "epochs"]),
        ({"exp": "seed: 1\n"}, "base", ["training.batch_size", "must be > 0", "(got -2)"]),
        ({"exp": "model: {layers: [{units: 0}]}\n"}, "exp", ["model.layers[0].units"]),
        ({"exp": "optimizer: {name: adam, lr: -1}\n"}, "exp", ["optimizer.lr", "must be > 0"]),
    ],
)
def test_an_error_names_the_file_that_set_the_key(files, tmp_path, texts, blamed, words):
    base = BASE.replace("batch_size: 4", "batch_size: -2") if blamed == "base" else BASE
    paths = files(base=base, **texts)
    with pytest.raises(ConfigError) as e:
        load_config(paths)
    message = str(e.value)
    assert message.startswith(f"{tmp_path / blamed}.yaml: "), message
    for w in words:
        assert w in message


def test_a_bad_value_overridden_by_a_later_file_is_no_error(files):
    cfg = load_config(
        files(base=BASE.replace("epochs: 5", "epochs: -1"), exp="training: {epochs: 2}\n")
    )
    assert cfg.training.epochs == 2


def test_a_key_missing_from_every_file_names_them_all(files, tmp_path):
    paths = files(a="data: {dataset: xor}\n", b="seed: 1\n")
    with pytest.raises(ConfigError) as e:
        load_config(paths)
    assert str(e.value).startswith(f"{paths[0]} + {paths[1]}: model: required key is missing")


def test_origin_follows_the_last_file_to_set_a_key(files):
    a, b = files(base=BASE, exp="optimizer: {name: sgd}\ntraining: {epochs: 2}\n")
    c = compose([a, b])
    assert c.origin[("training", "epochs")] == str(b)
    assert c.origin[("training", "batch_size")] == str(a)
    assert ("optimizer", "betas") not in c.origin and "betas" not in c.data["optimizer"]
    assert c.origin[("model", "layers", 0, "units")] == str(a)


def test_train_composes_and_writes_the_resolved_config(files, capsys):
    base, exp = files(base=BASE, exp="name: exp\ntraining: {epochs: 3}\nmodel: {dtype: float64}\n")
    code, out, err = run_cli(
        capsys, "train", str(base), str(exp), "--out", "run", "--set", "seed=11"
    )
    assert code == 0, err
    written = yaml.safe_load(open("run/config.yaml"))
    assert written == load_config([base, exp], ["seed=11"]).resolved()
    assert (written["name"], written["seed"], written["training"]["epochs"]) == ("exp", 11, 3)
    assert written["training"]["batch_size"] == 4 and written["model"]["dtype"] == "float64"
    assert len(open("run/metrics.csv").read().splitlines()) == 1 + 3


def test_validate_gradcheck_and_trace_take_several_files(files, capsys):
    base, exp = files(base=BASE, exp="model: {dtype: float64}\n")
    code, out, _ = run_cli(capsys, "validate", str(base), str(exp), "--json")
    assert code == 0 and '"dtype": "float64"' in out
    assert run_cli(capsys, "gradcheck", str(base), str(exp))[0] == 0
    assert run_cli(capsys, "trace", str(base), str(exp), "--json")[0] == 0
    code, _, err = run_cli(capsys, "validate", str(base), str(CONFIGS / "nowhere.yaml"))
    assert code == 2
    assert_one_line_error(err, "nowhere.yaml")


def test_a_file_that_is_not_a_mapping_is_named(files, capsys):
    base, bad = files(base=BASE, bad="- just\n- a list\n")
    code, _, err = run_cli(capsys, "train", str(base), str(bad), "--out", "x")
    assert code == 2
    assert_one_line_error(err, str(bad), "mapping")


def test_the_example_experiment_composes_onto_digits(tmp_path):
    example = CONFIGS / "experiments" / "digits-sgd.yaml"
    cfg = load_config([CONFIGS / "digits.yaml", example])
    digits = load_config(CONFIGS / "digits.yaml")
    assert (cfg.name, cfg.optimizer.name, cfg.optimizer.nesterov) == ("digits-sgd", "sgd", True)
    assert cfg.training.epochs == 20 and cfg.training.batch_size == digits.training.batch_size
    assert cfg.model == digits.model and cfg.data == digits.data
    bad = tmp_path / "typo.yaml"
    bad.write_text(example.read_text().replace("momentum:", "momentun:"))
    with pytest.raises(ConfigError) as e:
        load_config([CONFIGS / "digits.yaml", bad])
    assert str(e.value) == f"{bad}: optimizer.momentun: unknown key (did you mean 'momentum'?)"
