"""The config's data section: where the rows come from, how they are split, and how each
feature column is read (numeric or categorical) and its gaps filled."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import did_you_mean

BUILTIN_DATASETS = (
    "xor",
    "moons",
    "circles",
    "spirals",
    "friedman",
    "rare",
    "iris",
    "digits",
    "wine",
    "breast_cancer",
    "penguins",
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def path_text(key: str, v: str | None) -> str | None:
    if v is not None and ("\0" in v or not v.strip()):
        raise ValueError(f"{key}: expected a file system path (got {v!r})")
    return v


NumericImpute = Literal["mean", "median", "most_frequent", "constant", "none"]
CategoricalImpute = Literal["category", "most_frequent", "none"]
COLUMN_TYPES = ("numeric", "categorical")
MAX_DISTINCT = 100  # distinct values a categorical column may have unless max_categories says


class ColumnConfig(Strict):
    """One feature column's treatment; what is not given comes from the data section's
    defaults (and the type from the column's values: text, booleans -> categorical)."""

    type: Literal["numeric", "categorical"] | None = None
    impute: NumericImpute | CategoricalImpute | None = None
    fill_value: float | str | None = None
    missing_indicator: bool | None = None
    max_categories: int | None = Field(None, ge=1, le=10_000)


class DataConfig(Strict):
    dataset: str | None = None
    path: str | None = None
    # Fixed splits from their own files (the training file's columns): their rows are the
    # split, and the fraction of the training file for it becomes 0.
    validation_path: str | None = None
    test_path: str | None = None
    target: str | list[str] | None = None
    features: list[str] | None = None
    # classification | regression; None: from the loss (cross-entropy losses classify)
    task: Literal["classification", "regression"] | None = None
    validation: float = Field(0.15, ge=0, lt=1)
    test: float = Field(0.15, ge=0, lt=1)
    # random: drawn from the seed (stratified by class); ordered: the file's order, the
    # first rows training, then validation, the last rows test (the book's MNIST split)
    split: Literal["random", "ordered"] = "random"
    standardize: bool = True
    # regression: train on (y - mean) / std of the training rows; auto: where the output
    # layer can reach any value (identity), not a bounded one (sigmoid's 0..1 targets stay)
    standardize_target: bool | Literal["auto"] = "auto"
    dropna: bool = False
    sample_weight: str | None = None  # a numeric column: each row's weight in the loss
    sep: str | None = Field(None, min_length=1, max_length=1)  # a .csv/.txt's delimiter (sniffed)
    # Feature columns: their types and how gaps are filled, fitted on the training rows.
    columns: dict[str, ColumnConfig] = Field(default_factory=dict)
    impute: NumericImpute = "mean"  # numeric gaps
    impute_categorical: CategoricalImpute = "category"  # categorical gaps: their own category
    fill_value: float = 0.0  # for impute: constant
    missing_indicator: bool = False  # a 0/1 column per numeric feature that had gaps
    max_categories: int | None = Field(None, ge=1, le=10_000)
    n_samples: int | None = Field(None, gt=0, le=10_000_000)
    noise: float | None = Field(None, ge=0)

    @field_validator("path", "validation_path", "test_path")
    @classmethod
    def _path(cls, v, info):
        return path_text(f"data.{info.field_name}", v)

    @field_validator("columns", mode="before")
    @classmethod
    def _column_shorthand(cls, v):
        """``island: categorical`` is ``island: {type: categorical}``."""
        if isinstance(v, dict):
            return {k: {"type": c} if isinstance(c, str) else c for k, c in v.items()}
        return v

    @field_validator("columns")
    @classmethod
    def _column_options(cls, v):
        for name, c in v.items():
            numeric_only = c.impute in ("mean", "median", "constant") or c.missing_indicator
            if c.type == "categorical" and numeric_only:
                what = f"impute: {c.impute}" if c.impute else "missing_indicator"
                raise ValueError(
                    f"data.columns.{name}: {what} is for numeric columns; a categorical column "
                    "takes impute: category, most_frequent or none"
                )
            if c.type == "numeric" and (c.impute == "category" or c.max_categories):
                what = "impute: category" if c.impute == "category" else "max_categories"
                raise ValueError(f"data.columns.{name}: {what} is for categorical columns")
        return v

    @model_validator(mode="after")
    def _source(self):
        if (self.dataset is None) == (self.path is None):
            raise ValueError(
                "give exactly one of data.dataset (a built-in name) or data.path (a file)"
            )
        if self.dataset is not None and self.dataset not in BUILTIN_DATASETS:
            hint = did_you_mean(self.dataset, BUILTIN_DATASETS)
            raise ValueError(
                f"data.dataset: unknown dataset {self.dataset!r}{hint}; built-ins are {', '.join(BUILTIN_DATASETS)}"
            )
        self._split_files()
        if self.validation + self.test >= 1:
            raise ValueError(
                f"data.test: data.validation + data.test must be < 1 (got {self.validation} + {self.test})"
            )
        return self

    def _split_files(self) -> None:
        """A split read from its own file holds out nothing of the training file: its
        fraction is 0 (set so, or refused when the config gives another)."""
        for key, frac in (("validation_path", "validation"), ("test_path", "test")):
            if getattr(self, key) is None:
                continue
            if self.path is None:
                raise ValueError(
                    f"data.{key}: a split file goes with data.path (the training rows as a "
                    f"file), not a built-in dataset"
                )
            if frac not in self.model_fields_set:
                setattr(self, frac, 0.0)
            elif getattr(self, frac) != 0:
                raise ValueError(
                    f"data.{frac}: the {frac} rows come from data.{key} "
                    f"({getattr(self, key)}), so no fraction of the training file is held out "
                    f"for it; remove data.{frac} or set it to 0 (got {getattr(self, frac)})"
                )
