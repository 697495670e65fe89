"""Data: the built-in datasets (``builtin``), data files (``files``), targets as the losses take
them (``targets``), and the splits and standardization of a run (``prepare``)."""

from .builtin import builtin_features, describe_builtins, load_builtin
from .columns import describe as describe_columns
from .columns import encode
from .dataset import Dataset, checked_weights, streams
from .files import file_digest, load_file, read_columns, table_columns
from .prepare import (
    Prepared,
    apply_preprocessing,
    load_dataset,
    prepare,
    split_indices,
    split_rows,
)
from .targets import class_labels, encode_classes, encode_targets, regression_targets

__all__ = [
    "describe_columns",
    "encode",
    "split_rows",
    "builtin_features",
    "Dataset",
    "Prepared",
    "apply_preprocessing",
    "checked_weights",
    "class_labels",
    "describe_builtins",
    "encode_classes",
    "encode_targets",
    "file_digest",
    "load_builtin",
    "load_dataset",
    "load_file",
    "prepare",
    "regression_targets",
    "read_columns",
    "split_indices",
    "table_columns",
    "streams",
]
