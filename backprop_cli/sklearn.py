"""scikit-learn estimators over the Python API: ``MLPClassifier`` and ``MLPRegressor``.

    from sklearn.model_selection import GridSearchCV
    from backprop_cli import MLPClassifier

    search = GridSearchCV(MLPClassifier(epochs=50), {"hidden_layers": [(16,), (32, 32)]})
    search.fit(frame, labels)  # a DataFrame's text columns and gaps are the tool's to encode

A fit builds a config mapping from the estimator's parameters and calls
``backprop_cli.api.train``: the weights are those of ``backprop train`` on that config and
rows, and ``model_`` (an ``api.Trained``) saves a weights file the command line reads.

Parameters (both estimators; ``None`` is the config's own default, read from the config)

hidden_layers : tuple of int, or an int; the hidden layers' units, in order (the output layer
    is added: one unit per class, or per target column).
activation : a hidden layer's activation (``model.layers[].activation``).
output_activation : the output layer's activation; classifier: softmax for cross_entropy,
    sigmoid for binary_cross_entropy; regressor: identity.
loss : ``loss``; classifier: the config's default; regressor: mse.
optimizer : ``optimizer``: a name or a mapping of its keys, ``{"name": "sgd", "momentum": 0.9}``.
lr, weight_decay : the optimizer's (its defaults are the optimizer's).
batch_size, epochs, lr_schedule : ``training.*``; batch_size may be "full".
early_stopping : ``training.early_stopping``: None or False (off), True (the config's
    defaults), an int (the patience) or a mapping of its keys.
validation : ``data.validation``, the share of rows held out to watch; None: none without
    early stopping (every row trains, as scikit-learn's fit), the config's default with it.
    There is no test split: hold rows out with scikit-learn (train_test_split, cross-validation).
dropout : every hidden layer's dropout.
init, bias_init, bias_init_scale, dtype : ``model.init``, ``model.bias_init``,
    ``model.bias_init_scale``, ``model.dtype``. The optimizer's other keys (momentum, betas,
    ``decay_biases``, ...) go in ``optimizer`` as a mapping.
random_state : the config's ``seed``, scikit-learn's name for it: an int, or a RandomState
    that draws one. None is the config's default seed: unlike scikit-learn's None, every fit
    of the same rows gives the same weights.
standardize, impute, impute_categorical, fill_value, missing_indicator, max_categories,
columns : ``data.*``: how feature columns are typed, imputed and scaled; ``columns`` is
    ``data.columns``, per column by name (a DataFrame's names; an array's are x0, x1, ...).
class_weight : classifier, ``training.class_weight``: "balanced" or ``{label: weight}``.
standardize_target : regressor, ``data.standardize_target``.

MLPClassifier takes multi-label targets too, as scikit-learn's does: y an (n_samples, n_labels)
0/1 indicator matrix (an array, a list of lists, a sparse matrix or a DataFrame) trains a
sigmoid unit per label (binary_cross_entropy); ``classes_`` is 0 .. n_labels - 1, ``predict``
gives the 0/1 matrix (1 where a label's output is >= 0.5) and ``predict_proba`` each label's
own output.

``fit(X, y, sample_weight=None)``: ``sample_weight`` is each row's weight in the loss
(``data.sample_weight``, in memory); the standardization and imputation are fitted on the
rows, unweighted, as for a file.

X is a numeric array, or a pandas DataFrame taken as it is: its text, boolean and categorical
columns are one-hot encoded and its gaps filled by the tool (not converted to numbers first).
There is no ``partial_fit``: a fit is the tool's whole training run (its splits, standardization
fitted on the training rows, schedules and early stopping), not a step that can be resumed
on new rows.
"""

from __future__ import annotations

import numbers
from contextlib import contextmanager

import numpy as np
import pandas as pd

from . import api
from .config import Config, task_of
from .config.data import DataConfig
from .errors import ConfigError, DataError
from .nn.losses import LOSSES
from .nn.metrics import predicted_classes

EXTRA = "pip install 'backprop-cli[sklearn]'"
try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import (  # _check_sample_weight: as scikit-learn's own use it
        _check_sample_weight,
        check_array,
        check_consistent_length,
        check_is_fitted,
        column_or_1d,
    )
except ImportError as e:
    raise ImportError(f"backprop_cli.sklearn needs scikit-learn: {EXTRA}") from e
try:
    from sklearn.utils.validation import validate_data
except ImportError as e:  # scikit-learn < 1.6: no validate_data, no __sklearn_tags__
    raise ImportError(
        f"backprop_cli.sklearn needs scikit-learn >= 1.6 (found {sklearn.__version__}): {EXTRA}"
    ) from e

__all__ = ["MLPClassifier", "MLPRegressor"]


def _given(**keys) -> dict:
    """The keys whose value is not None (None: the config's default)."""
    return {k: v for k, v in keys.items() if v is not None}


def _plain(value):
    """Config values as a YAML file has them: lists for tuples, Python numbers for NumPy's
    (the config is strict: an np.int64 is no int)."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _is_frame(X) -> bool:
    return hasattr(X, "columns") and hasattr(X, "iloc")  # a pandas DataFrame


def _named(y: np.ndarray, given):
    """y with the name(s) of a pandas target: the weights file keeps them (eval finds them)."""
    if isinstance(given, pd.DataFrame):
        return pd.DataFrame(y.reshape(len(y), -1), columns=[str(c) for c in given.columns])
    if isinstance(given, pd.Series) and given.name is not None:
        return pd.Series(y, name=str(given.name))
    return y


def _early_stopping(value):
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if isinstance(value, numbers.Integral):
        return {"patience": value}
    return dict(value)


def _seed(random_state):
    if random_state is None or isinstance(random_state, numbers.Integral):
        return random_state
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class _MLP(BaseEstimator):
    """What the two estimators share: the config they build, fit, and the checks of X."""

    _task = ""  # classification or regression: the losses the estimator takes

    def fit(self, X, y, sample_weight=None):
        """Train a new network on X (n_samples, n_features) and y; returns self.

        ``sample_weight`` (n_samples,): each row's weight in the loss (the config's
        data.sample_weight, in memory)."""
        X = self._features(X, reset=True)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        targets = self._targets(X, y, sample_weight)
        config = self._config(targets)
        with self._as_value_error():
            self.model_ = api.train(config, X=X, y=_named(targets, y), sample_weight=sample_weight)
        self.n_iter_ = self.model_.spec.epoch
        return self

    def _features(self, X, reset: bool):
        """X checked (its width and names recorded by fit, compared by predict): an array as
        numbers (NaN allowed: gaps are imputed), a DataFrame as it is; after a fit on an array,
        a DataFrame without its columns (x0, x1, ...) by position, as scikit-learn's."""
        if _is_frame(X) and (reset or self._by_name(X)):
            validate_data(self, X, reset=reset, skip_check_array=True)
            return X
        return validate_data(self, X, reset=reset, dtype="numeric", ensure_all_finite="allow-nan")

    def _by_name(self, X) -> bool:
        return set(self.model_.spec.input_columns) <= {str(c) for c in X.columns}

    def _targets(self, X, y, sample_weight):
        raise NotImplementedError

    @contextmanager
    def _as_value_error(self):
        """The tool's errors of parameters and data as ValueError, scikit-learn's type for them."""
        try:
            yield
        except (ConfigError, DataError) as e:
            raise ValueError(f"{type(self).__name__}: {e}") from e

    def _loss(self, y) -> str:
        """The loss for targets y: the parameter, else the config's default."""
        loss = self.loss if self.loss is not None else Config.model_fields["loss"].default
        if loss in LOSSES and task_of(loss) != self._task:  # an unknown name: the config says
            raise ValueError(
                f"{type(self).__name__}: loss {loss!r} is a {task_of(loss)} loss; expected a "
                f"{self._task} loss"
            )
        return loss

    def _config(self, y) -> dict:
        """The config mapping of this estimator's parameters, for targets y."""
        loss = self._loss(y)
        units, activation = self._output(loss, y)
        hidden = [self.hidden_layers] if np.isscalar(self.hidden_layers) else self.hidden_layers
        layers = [_given(units=u, activation=self.activation, dropout=self.dropout) for u in hidden]
        layers.append({"units": units, "activation": activation})
        early_stopping = _early_stopping(self.early_stopping)
        training = _given(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr_schedule=self.lr_schedule,
            early_stopping=early_stopping,
            **self._training_keys(),
        )
        return _plain(
            _given(
                seed=_seed(self.random_state),
                loss=loss,
                model=_given(
                    layers=layers,
                    init=self.init,
                    bias_init=self.bias_init,
                    bias_init_scale=self.bias_init_scale,
                    dtype=self.dtype,
                ),
                optimizer=self._optimizer(),
                training=training,
                data=self._data(early_stopping is not None),
            )
        )

    def _optimizer(self):
        hyper = _given(lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer is None and not hyper:
            return None
        opt = self.optimizer
        section = {"name": opt} if isinstance(opt, str) else dict(opt or {})
        if "name" not in section:
            section["name"] = (
                Config.model_fields["optimizer"].get_default(call_default_factory=True).name
            )
        return {**section, **hyper}

    def _data(self, early_stopping: bool) -> dict:
        validation = self.validation
        if validation is None:
            validation = DataConfig.model_fields["validation"].default if early_stopping else 0
        return _given(
            validation=validation,
            test=0.0,
            standardize=self.standardize,
            impute=self.impute,
            impute_categorical=self.impute_categorical,
            fill_value=self.fill_value,
            missing_indicator=self.missing_indicator,
            max_categories=self.max_categories,
            columns=self.columns,
            **self._data_keys(),
        )

    def _training_keys(self) -> dict:
        return {}

    def _data_keys(self) -> dict:
        return {}

    def _outputs(self, X, method: str):
        """``model_.method(X)`` on X checked against what fit saw."""
        check_is_fitted(self)
        X = self._features(X, reset=False)
        with self._as_value_error():
            return getattr(self.model_, method)(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # gaps are imputed (data.impute)
        tags.input_tags.categorical = True  # a DataFrame's text and categorical columns
        return tags


class MLPClassifier(ClassifierMixin, _MLP):
    """A fully connected network trained by backprop for class labels: a softmax output layer
    of one unit per class and the cross-entropy loss (see the module for the parameters).

    Attributes: ``classes_``, ``n_features_in_``, ``feature_names_in_`` (a DataFrame's),
    ``model_`` (the ``api.Trained`` network: ``model_.save(path)``), ``n_iter_`` (epochs).
    """

    _task = "classification"

    def __init__(
        self,
        hidden_layers=(32,),
        *,
        activation=None,
        output_activation=None,
        loss=None,
        optimizer=None,
        lr=None,
        weight_decay=None,
        batch_size=None,
        epochs=None,
        lr_schedule=None,
        early_stopping=None,
        validation=None,
        dropout=None,
        init=None,
        bias_init=None,
        bias_init_scale=None,
        dtype=None,
        random_state=None,
        standardize=None,
        impute=None,
        impute_categorical=None,
        fill_value=None,
        missing_indicator=None,
        max_categories=None,
        columns=None,
        class_weight=None,
    ):
        self.hidden_layers = hidden_layers
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.validation = validation
        self.dropout = dropout
        self.init = init
        self.bias_init = bias_init
        self.bias_init_scale = bias_init_scale
        self.dtype = dtype
        self.random_state = random_state
        self.standardize = standardize
        self.impute = impute
        self.impute_categorical = impute_categorical
        self.fill_value = fill_value
        self.missing_indicator = missing_indicator
        self.max_categories = max_categories
        self.columns = columns
        self.class_weight = class_weight

    def predict(self, X) -> np.ndarray:
        """The class labels (n_samples,) of the rows of X, of ``classes_``'s type; multi-label:
        the (n_samples, n_labels) 0/1 matrix, 1 where a label's output is >= 0.5, of y's dtype."""
        if self._multilabel():
            return self._outputs(X, "predict").astype(self._label_dtype, copy=False)
        out = self._outputs(X, "outputs")
        return self.classes_[predicted_classes(out)]

    def predict_proba(self, X) -> np.ndarray:
        """(n_samples, n_classes) probabilities, the classes in ``classes_`` order; multi-label:
        (n_samples, n_labels), each label's own output."""
        return self._outputs(X, "predict_proba")

    def _multilabel(self) -> bool:
        check_is_fitted(self)
        return bool(self.model_.spec.multilabel)

    def _targets(self, X, y, sample_weight):
        if type_of_target(y) == "multilabel-indicator":  # (n, labels) of 0/1: a unit each
            y = check_array(y, accept_sparse=True, dtype=None, input_name="y")
            y = y.toarray() if hasattr(y, "toarray") else np.asarray(y)
            check_consistent_length(X, y)
            self.classes_ = np.arange(y.shape[1])  # as scikit-learn's MLPClassifier: 0 .. k-1
            self._label_dtype = y.dtype
            return y.astype(np.int64)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)  # the tool's order too: sorted labels
        weighed = y if sample_weight is None else y[sample_weight > 0]
        if len(np.unique(weighed)) < 2:
            raise ValueError(
                f"{type(self).__name__} needs rows of at least 2 classes with a weight > 0; "
                f"the data has only one class: {np.unique(weighed)[0]!r}"
            )
        return y

    def _loss(self, y) -> str:
        if self.loss is None and y.ndim == 2:  # multi-label: a sigmoid unit per label
            return "binary_cross_entropy"
        return super()._loss(y)

    def _output(self, loss: str, y) -> tuple[int, str]:
        """The output layer: one sigmoid unit for binary_cross_entropy (one per label for
        multi-label targets), else a unit per class."""
        if y.ndim == 2:
            return y.shape[1], self.output_activation or "sigmoid"
        if loss == "binary_cross_entropy":
            return 1, self.output_activation or "sigmoid"
        return len(self.classes_), self.output_activation or "softmax"

    def _training_keys(self) -> dict:
        return _given(class_weight=self.class_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True  # y (n, labels) of 0/1: a sigmoid unit each
        return tags


class MLPRegressor(RegressorMixin, _MLP):
    """A fully connected network trained by backprop for numeric targets (one or more
    columns): an identity output layer and the mean squared error (see the module for the
    parameters).

    Attributes: ``n_features_in_``, ``feature_names_in_`` (a DataFrame's), ``model_`` (the
    ``api.Trained`` network: ``model_.save(path)``), ``n_iter_`` (epochs trained).
    """

    _task = "regression"

    def __init__(
        self,
        hidden_layers=(32,),
        *,
        activation=None,
        output_activation="identity",
        loss="mse",
        optimizer=None,
        lr=None,
        weight_decay=None,
        batch_size=None,
        epochs=None,
        lr_schedule=None,
        early_stopping=None,
        validation=None,
        dropout=None,
        init=None,
        bias_init=None,
        bias_init_scale=None,
        dtype=None,
        random_state=None,
        standardize=None,
        impute=None,
        impute_categorical=None,
        fill_value=None,
        missing_indicator=None,
        max_categories=None,
        columns=None,
        standardize_target=None,
    ):
        self.hidden_layers = hidden_layers
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.validation = validation
        self.dropout = dropout
        self.init = init
        self.bias_init = bias_init
        self.bias_init_scale = bias_init_scale
        self.dtype = dtype
        self.random_state = random_state
        self.standardize = standardize
        self.impute = impute
        self.impute_categorical = impute_categorical
        self.fill_value = fill_value
        self.missing_indicator = missing_indicator
        self.max_categories = max_categories
        self.columns = columns
        self.standardize_target = standardize_target

    def predict(self, X) -> np.ndarray:
        """(n_samples,) values in the target's units, or (n_samples, n_targets) for several."""
        return self._outputs(X, "predict")

    def _targets(self, X, y, sample_weight):
        y = check_array(y, ensure_2d=False, dtype="numeric", input_name="y")
        check_consistent_length(X, y)
        return y

    def _output(self, loss: str, y) -> tuple[int, str]:
        """One output unit per target column."""
        return (1 if y.ndim == 1 else y.shape[1]), self.output_activation

    def _data_keys(self) -> dict:
        return _given(standardize_target=self.standardize_target)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # y (n, k): k output units
        return tags
