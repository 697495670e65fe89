"""A trained model out of the tool: ONNX (the whole preprocessing and the network, one
graph) and safetensors (the parameters alone, for PyTorch users).

ONNX inputs: one tensor per raw feature column, named as the column, shape (N, 1), so a
caller passes the table as it is. A numeric column is float64 (a gap NaN); a categorical
column is float64 when its categories are all numbers (a gap NaN) and a string tensor
otherwise (a gap the empty string ""). The graph fills gaps with the training fill values,
one-hot encodes (an unseen category is all zeros) and standardizes with x_mean and x_scale,
in float64 as backprop does, then runs every layer in the model's dtype (Gemm and the
activation; gelu through Erf; residual Add).
Outputs: classification ``probabilities`` (N, classes) and ``label`` (N,) (the class labels,
as strings or numbers); multi-label ``probabilities`` (N, labels), each label's own output,
and ``label`` (N, labels), 0/1 int64 (1 where the output is >= 0.5); regression
``prediction`` (N, targets), in the target's units.
Built with the ``onnx`` package's helpers and checked with ``onnx.checker`` (the ``onnx``
extra); tested against ``backprop predict`` with onnxruntime.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .errors import require_extra
from .inference import Model, columns_of
from .store.weights import ColumnSpec

OPSET = 19  # Equal on strings needs 19
FORMATS = ("onnx", "safetensors")


def _require(module: str, extra: str):
    return require_extra(module, extra, f"export --format {extra}")


def input_kind(c: ColumnSpec) -> str:
    """float or string: the ONNX input type of a raw column."""
    if c.kind == "numeric":
        return "float"
    numbers = all(isinstance(v, int | float) for v in c.categories + (c.other or []))
    return "float" if numbers else "string"


class _Graph:
    """Nodes and constants, named as they are added."""

    def __init__(self, dtype: np.dtype):
        import onnx

        self.onnx, self.dtype = onnx, np.dtype(dtype)
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, value, stem: str = "c", dtype=None) -> str:
        """A constant tensor; floats in ``dtype`` (default: the network's)."""
        from onnx import numpy_helper

        array = np.asarray(value)
        if array.dtype.kind in "fc":
            array = array.astype(dtype or self.dtype)
        elif array.dtype.kind in "USO":
            array = array.astype(object)
        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str | None = None, **attrs) -> str:
        out = self.name(stem or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], **attrs))
        return out

    @property
    def float_type(self) -> int:
        tp = self.onnx.TensorProto
        return tp.DOUBLE if self.dtype == np.float64 else tp.FLOAT


# The preprocessing runs in float64, as backprop's does (a column like a year, 2009 - 2008.04,
# loses its digits in float32); the network in the model's dtype.
F64 = np.float64


def _numeric(g: _Graph, c: ColumnSpec) -> list[str]:
    x, gaps = c.name, g.op("IsNaN", [c.name])
    if c.fill is not None:
        x = g.op("Where", [gaps, g.const(np.array([[c.fill]]), dtype=F64), x])
    return [x, g.op("Cast", [gaps], to=g.onnx.TensorProto.DOUBLE)] if c.indicator else [x]


def _categorical(g: _Graph, c: ColumnSpec) -> list[str]:
    text = input_kind(c) == "string"
    double = g.onnx.TensorProto.DOUBLE

    def values(cats) -> str:
        if text:
            return g.const(np.array([[str(v) for v in cats]], dtype=object))
        return g.const(np.array([cats], float), dtype=F64)

    def gap_of(x: str) -> str:
        if text:
            return g.op("Equal", [x, g.const(np.array([[""]], dtype=object))])
        return g.op("IsNaN", [x])

    x = c.name
    if c.fill is not None:  # most_frequent: a gap is the most frequent category
        x = g.op("Where", [gap_of(x), values([c.fill]), x])
    parts = []
    if c.categories:
        parts.append(g.op("Cast", [g.op("Equal", [x, values(c.categories)])], to=double))
    if c.missing:
        parts.append(g.op("Cast", [gap_of(x)], to=double))
    if c.other is not None:
        hits = g.op("Cast", [g.op("Equal", [x, values(c.other)])], to=double)
        parts.append(g.op("ReduceMax", [hits, g.const(np.array([1], np.int64))], keepdims=1))
    return parts


ACTIVATIONS = {
    "relu": ("Relu", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.01}),
    "softmax": ("Softmax", {"axis": -1}),
}


def _activation(g: _Graph, name: str, z: str) -> str:
    """The layer's activation, written as the network computes it where ONNX's own op would
    round differently."""
    if name == "identity":
        return z
    if name == "gelu":  # z (1 + erf(z / sqrt 2)) / 2
        erf = g.op("Erf", [g.op("Mul", [z, g.const(1.0 / math.sqrt(2.0))])])
        return g.op("Mul", [g.op("Mul", [z, g.op("Add", [erf, g.const(1.0)])]), g.const(0.5)])
    if (
        name == "elu"
    ):  # alpha expm1(z) for z <= 0, with expm1(x) = tanh(x/2) (e^x + 1): exact near 0
        neg = g.op("Min", [z, g.const(0.0)])
        half = g.op("Tanh", [g.op("Mul", [neg, g.const(0.5)])])
        expm1 = g.op("Mul", [half, g.op("Add", [g.op("Exp", [neg]), g.const(1.0)])])
        return g.op("Where", [g.op("Greater", [z, g.const(0.0)]), z, expm1])
    if name == "softplus":  # max(z, 0) + log(1 + e^-|z|): never overflows
        tail = g.op("Exp", [g.op("Neg", [g.op("Abs", [z])])])
        return g.op("Add", [g.op("Relu", [z]), g.op("Log", [g.op("Add", [tail, g.const(1.0)])])])
    op, attrs = ACTIVATIONS[name]
    return g.op(op, [z], **attrs)


def _outputs(g: _Graph, model: Model, a: str) -> list:
    """The graph's outputs after the last layer's activation ``a``."""
    helper, spec = g.onnx.helper, model.spec
    if model.task == "regression":
        out = a
        if spec.y_mean is not None:
            out = g.op(
                "Add",
                [g.op("Mul", [a, g.const(np.array(spec.y_scale))]), g.const(np.array(spec.y_mean))],
            )
        g.nodes.append(helper.make_node("Identity", [out], ["prediction"]))
        return [helper.make_tensor_value_info("prediction", g.float_type, ["N", spec.sizes[-1]])]
    if spec.multilabel:  # each label's own output, and 0/1 where it is >= 0.5, as predict
        return _multilabel_outputs(g, spec, a)
    probs = a
    if spec.sizes[-1] == 1:  # one sigmoid unit: [1 - p, p]
        probs = g.op("Concat", [g.op("Sub", [g.const(np.array([[1.0]])), a]), a], axis=1)
    elif spec.activations[-1] != "softmax":  # a unit per class: clipped at 0, over the sum
        clipped = g.op("Relu", [a])
        total = g.op("ReduceSum", [clipped, g.const(np.array([1], np.int64))], keepdims=1)
        probs = g.op("Div", [clipped, total])
    g.nodes.append(helper.make_node("Identity", [probs], ["probabilities"]))
    index = g.op("ArgMax", [probs], axis=1, keepdims=0)
    classes = spec.classes
    tp = g.onnx.TensorProto
    if all(isinstance(c, str) for c in classes):
        labels, kind = np.array(classes, dtype=object), tp.STRING
    elif all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        labels, kind = np.array(classes, dtype=np.int64), tp.INT64
    else:
        labels, kind = np.array([str(c) for c in classes], dtype=object), tp.STRING
    g.nodes.append(helper.make_node("Gather", [g.const(labels, "classes"), index], ["label"]))
    return [
        helper.make_tensor_value_info("probabilities", g.float_type, ["N", len(classes)]),
        helper.make_tensor_value_info("label", kind, ["N"]),
    ]


def _multilabel_outputs(g: _Graph, spec, a: str) -> list:
    """A multi-label model's outputs: ``probabilities`` (N, labels), each label's output
    unit, and ``label`` (N, labels), int64 1 where that unit is >= 0.5, else 0 (the labels in
    spec.classes order, as ``predict`` writes them)."""
    helper, tp = g.onnx.helper, g.onnx.TensorProto
    g.nodes.append(helper.make_node("Identity", [a], ["probabilities"]))
    on = g.op("GreaterOrEqual", [a, g.const(np.array([[0.5]]))])
    g.nodes.append(helper.make_node("Cast", [on], ["label"], to=tp.INT64))
    k = len(spec.classes)
    return [
        helper.make_tensor_value_info("probabilities", g.float_type, ["N", k]),
        helper.make_tensor_value_info("label", tp.INT64, ["N", k]),
    ]


def onnx_model(model: Model):
    """The ONNX ModelProto of a trained model: raw columns in, probabilities/labels or
    predictions out (the module docstring says how)."""
    onnx = _require("onnx", "onnx")
    helper, spec = onnx.helper, model.spec
    g = _Graph(model.net.dtype)
    inputs, parts = [], []
    for c in columns_of(spec):
        kind = onnx.TensorProto.DOUBLE if input_kind(c) == "float" else onnx.TensorProto.STRING
        inputs.append(helper.make_tensor_value_info(c.name, kind, ["N", 1]))
        parts += _numeric(g, c) if c.kind == "numeric" else _categorical(g, c)
    x = g.op("Concat", parts, axis=1) if len(parts) > 1 else parts[0]
    x = g.op("Sub", [x, g.const(model.mean[None, :], dtype=F64)])
    x = g.op("Cast", [g.op("Div", [x, g.const(model.scale[None, :], dtype=F64)])], to=g.float_type)
    net = model.net
    for l, act in enumerate(net.activation_names):
        z = g.op("Gemm", [x, g.const(net.W[l], f"W{l}"), g.const(net.b[l], f"b{l}")])
        a = _activation(g, act, z)
        x = g.op("Add", [a, x]) if net.residual[l] else a
    outputs = _outputs(g, model, x)
    graph = helper.make_graph(g.nodes, "backprop", inputs, outputs, g.inits)
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="backprop",
        doc_string=f"{spec.name}: {'-'.join(map(str, spec.sizes))}, {spec.loss}",
    )
    proto.ir_version = 9  # what onnxruntime 1.16 and later read
    onnx.checker.check_model(proto, full_check=True)
    return proto


def onnx_feeds(model: Model, frame) -> dict[str, np.ndarray]:
    """The exported graph's inputs for a pandas DataFrame of raw columns: one (N, 1) array per
    column, float (gaps NaN) or text (gaps "")."""
    feeds = {}
    for c in columns_of(model.spec):
        v = frame[c.name]
        if input_kind(c) == "float":
            feeds[c.name] = v.to_numpy(dtype=np.float64, na_value=np.nan).reshape(-1, 1)
        else:
            text = [("" if x is None or x != x else str(x)) for x in v.tolist()]
            feeds[c.name] = np.array(text, dtype=object).reshape(-1, 1)
    return feeds


def safetensors_bytes(model: Model) -> bytes:
    """The parameters as safetensors: W0, b0, W1, ... (W_i (fan_in, fan_out): torch's
    nn.Linear weight is its transpose), x_mean and x_scale, and the spec as metadata."""
    numpy = _require("safetensors.numpy", "safetensors")
    tensors = {
        n: np.ascontiguousarray(t)
        for n, t in zip(model.net.tensor_names(), model.net.tensors(), strict=True)
    }
    tensors["x_mean"], tensors["x_scale"] = model.mean, model.scale
    return numpy.save(tensors, metadata={"spec": model.spec.to_json()})


def export(model: Model, fmt: str, out: Path) -> Path:
    """Write ``model`` as ``fmt`` (onnx, safetensors) to ``out``, atomically."""
    from .store.files import atomic_write

    data = onnx_model(model).SerializeToString() if fmt == "onnx" else safetensors_bytes(model)
    atomic_write(Path(out), lambda f: f.write(data))
    return Path(out)
