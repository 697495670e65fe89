"""backprop: train fully connected networks with hand-written backpropagation in NumPy.

The command line is ``backprop`` (``backprop_cli.cli``). From Python::

    import backprop_cli as bp

    model = bp.train(config, X=frame, y=labels)   # the same engine, in memory
    model.predict(new_rows); model.save("model.npz")
    bp.load("runs/iris/weights.npz").predict_proba(new_rows)

and scikit-learn estimators, ``from backprop_cli import MLPClassifier, MLPRegressor`` (the
``sklearn`` extra). Everything is imported when first used, so ``import backprop_cli`` and
``backprop --help`` stay fast.
"""

from .version import __version__

__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "Trained",
    "__version__",
    "config_of",
    "load",
    "train",
    "train_run",
]

_API = ("Trained", "config_of", "load", "train", "train_run")
_ESTIMATORS = ("MLPClassifier", "MLPRegressor")


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _ESTIMATORS:
        from . import sklearn as estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'backprop_cli' has no attribute {name!r}")
