"""backprop eval and backprop predict: a trained model on held-out or new rows."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import JsonOpt, app


@app.command("eval")
def eval_(
    weights: Annotated[Path, typer.Option("--weights", "-w", help="weights.npz of a run.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Evaluate on all rows of this file (it needs the training target column).",
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Evaluate on a built-in dataset's split.")
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="Which held-out split to rebuild: test, val or train.")
    ] = "test",
    min_accuracy: Annotated[
        float | None, typer.Option("--min-accuracy", help="Exit 1 if accuracy is below this.")
    ] = None,
    max_loss: Annotated[
        float | None, typer.Option("--max-loss", help="Exit 1 if the loss is above this.")
    ] = None,
    min_r2: Annotated[
        float | None, typer.Option("--min-r2", help="Exit 1 if R^2 is below this (regression).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate a trained network: loss, accuracy or R^2, confusion matrix."""
    from ..errors import CheckFailed, ConfigError
    from ..inference import SPLITS, evaluate_model, gate_failures, load_model
    from . import console

    if split not in SPLITS:
        raise ConfigError(f"--split: {split!r} is not a split; expected one of {', '.join(SPLITS)}")
    if data is not None and dataset is not None:
        raise ConfigError("--data and --dataset: give one or the other")
    model = load_model(weights)
    result = evaluate_model(model, data=data, dataset=dataset, split=split)
    for w in result.get("warnings", []):
        print(f"warning: {console.safe(w)}", file=sys.stderr)
    failures = gate_failures(result, min_accuracy=min_accuracy, min_r2=min_r2, max_loss=max_loss)
    result["passed"] = not failures
    result["failures"] = failures
    if json_out:
        console.json_line(result)
    else:
        metric = (
            [("accuracy", result["accuracy"])] if "accuracy" in result else [("r2", result["r2"])]
        )
        console.key_values(
            f"{result['data']}", [("loss", result["loss"]), *metric, ("rows", result["rows"])]
        )
        if "confusion_matrix" in result:
            console.confusion(result["classes"], result["confusion_matrix"])
    if failures:
        raise CheckFailed("; ".join(failures))


@app.command()
def predict(
    weights: Annotated[Path, typer.Option("--weights", "-w", help="weights.npz of a run.")],
    input_: Annotated[
        str, typer.Option("--input", "-i", help="CSV/TSV/Parquet/NPZ file of rows to predict.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="CSV file to write (default, or -: stdout)."),
    ] = None,
    proba: Annotated[
        bool, typer.Option("--proba", help="Add one probability column per class.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --output if it exists.")
    ] = False,
) -> None:
    """Predict new rows with the stored preprocessing; CSV out with the original labels."""
    from ..inference import load_model, predict_rows
    from ..store.files import refuse_existing, write_output
    from . import console

    if output is not None and str(output) == "-":
        output = None
    if output is not None:
        refuse_existing(output, overwrite, "--output")
    model = load_model(weights)
    frame, warnings = predict_rows(model, input_, proba=proba)
    for w in warnings:
        print(f"warning: {console.safe(w)}", file=sys.stderr)
    text = frame.to_csv(index=False, lineterminator="\n", float_format="%.8g")
    if output is None:
        sys.stdout.write(text)
        return
    write_output(output, text)
    print(f"wrote {len(frame)} predictions to {output}", file=sys.stderr)
