"""backprop eval and backprop predict: a trained model on held-out or new rows."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import JsonOpt, OldName, WeightsOpt, app, renamed

DataOpt = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Evaluate on all rows of this file (it needs the training target column).",
        metavar="FILE",
    ),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option("--dataset", help="Evaluate on a built-in dataset's split.", metavar="NAME"),
]
SplitOpt = Annotated[
    str,
    typer.Option(
        "--split", help="Which held-out split to rebuild: test, val or train.", metavar="SPLIT"
    ),
]


def _gate(option: str, what: str):
    return Annotated[float | None, typer.Option(option, help=f"Exit 1 if {what}.")]


@app.command("eval", example="backprop eval --weights runs/iris/weights.npz --min-accuracy 0.9")
def eval_(
    weights: WeightsOpt,
    data: DataOpt = None,
    dataset: DatasetOpt = None,
    split: SplitOpt = "test",
    min_accuracy: _gate("--min-accuracy", "accuracy is below this") = None,
    min_balanced_accuracy: _gate(
        "--min-balanced-accuracy", "balanced accuracy is below this"
    ) = None,
    min_precision: _gate("--min-precision", "precision (macro) is below this") = None,
    min_recall: _gate("--min-recall", "recall (macro) is below this") = None,
    min_f1: _gate("--min-f1", "F1 (macro) is below this") = None,
    min_auc: _gate("--min-auc", "ROC-AUC is below this") = None,
    max_log_loss: _gate("--max-log-loss", "the log loss is above this") = None,
    max_loss: _gate("--max-loss", "the loss is above this") = None,
    min_r2: _gate("--min-r2", "R^2 is below this (regression)") = None,
    max_mae: _gate("--max-mae", "the MAE is above this (regression)") = None,
    max_rmse: _gate("--max-rmse", "the RMSE is above this (regression)") = None,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate a trained network: the loss, every metric, a confusion matrix; CI gates."""
    from ..errors import CheckFailed, ConfigError
    from ..inference import GATES, SPLITS, check_gates, evaluate_model, gate_failures, load_model
    from . import console

    if split not in SPLITS:
        raise ConfigError(f"--split: {split!r} is not a split; expected one of {', '.join(SPLITS)}")
    if data is not None and dataset is not None:
        raise ConfigError("--data and --dataset: give one or the other")
    given = locals()  # the gates' parameters are named after their options
    thresholds = {opt: given[opt[2:].replace("-", "_")] for opt in GATES}
    model = load_model(weights)
    check_gates(model.task, thresholds)  # before any data is read
    result = evaluate_model(model, data=data, dataset=dataset, split=split)
    for w in result.get("warnings", []):
        print(f"warning: {console.safe(w)}", file=sys.stderr)
    failures = gate_failures(result, thresholds)
    result["passed"] = not failures
    result["failures"] = failures
    if json_out:
        console.json_line(result)
    else:
        _render(result)
    if failures:
        raise CheckFailed("; ".join(failures))


CLASSIFICATION_ROWS = (
    ("accuracy", "accuracy"),
    ("label accuracy", "label_accuracy"),
    ("balanced accuracy", "balanced_accuracy"),
    ("precision (macro)", "precision_macro"),
    ("recall (macro)", "recall_macro"),
    ("F1 (macro)", "f1_macro"),
    ("ROC-AUC", "roc_auc"),
    ("log loss", "log_loss"),
)
REGRESSION_ROWS = (("R^2", "r2"), ("MAE", "mae"), ("RMSE", "rmse"))


def _render(result: dict) -> None:
    from . import console

    classify = result["task"] == "classification"
    rows = CLASSIFICATION_ROWS if classify else REGRESSION_ROWS
    items = [("loss", result["loss"]), *((label, result[k]) for label, k in rows if k in result)]
    console.key_values(f"{result['data']}", [*items, ("rows", result["rows"])])
    if classify:
        per = result["per_class"]
        multilabel = "label_accuracy" in result  # per label: rows are its positive rows
        console.table(
            "per label" if multilabel else "per class",
            ["label" if multilabel else "class", "precision", "recall", "F1", "rows"],
            [[c, v["precision"], v["recall"], v["f1"], v["rows"]] for c, v in per.items()],
        )
        if "confusion_matrix" in result:
            console.confusion(result["classes"], result["confusion_matrix"])
    elif len(result["per_target"]) > 1:
        per = result["per_target"]
        console.table(
            "per target",
            ["target", "R^2", "MAE", "RMSE"],
            [[t, v["r2"], v["mae"], v["rmse"]] for t, v in per.items()],
        )


@app.command(
    example="backprop predict --weights runs/iris/weights.npz --data new.csv --out preds.csv"
)
def predict(
    weights: WeightsOpt,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="CSV/TSV/Parquet/JSON/NPZ file of rows to predict (required).",
            metavar="FILE",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="CSV file to write (default, or -: stdout).", metavar="FILE"
        ),
    ] = None,
    proba: Annotated[
        bool, typer.Option("--proba", help="Add one probability column per class.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --out if it exists.")
    ] = False,
    keep: Annotated[
        str | None,
        typer.Option(
            "--keep",
            help="Copy these input columns (id,name) beside the predictions.",
            metavar="COLS",
        ),
    ] = None,
    old_input: Annotated[str | None, OldName("--input", "-i")] = None,
    old_output: Annotated[Path | None, OldName("--output")] = None,
) -> None:
    """Predict new rows with the stored preprocessing; CSV out with the original labels."""
    from ..inference import load_model, predict_rows
    from ..store.files import refuse_existing, write_output
    from . import console

    data = renamed("--input", old_input, "--data", data, required=True)
    out = renamed("--output", old_output, "--out", out)
    if out is not None and str(out) == "-":
        out = None
    if out is not None:
        refuse_existing(out, overwrite, "--out")
    model = load_model(weights)
    kept = [c.strip() for c in keep.split(",") if c.strip()] if keep is not None else []
    frame, warnings = predict_rows(model, data, proba=proba, keep=kept)
    for w in warnings:
        print(f"warning: {console.safe(w)}", file=sys.stderr)
    text = frame.to_csv(index=False, lineterminator="\n", float_format="%.8g")
    if out is None:
        sys.stdout.write(text)
        return
    write_output(out, text)
    print(f"wrote {len(frame)} predictions to {out}", file=sys.stderr)
