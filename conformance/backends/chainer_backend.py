"""The ``chainer`` backend: Chainer 7.8.1's own loss functions, called as a user calls them.

``chainer.functions.softmax_cross_entropy`` runs with every documented option passed
through under its own name. ``x`` is a ``chainer.Variable`` of the case's dtype; ``t`` is
given as Chainer reads it: soft targets (float, the case's dtype) when ``t`` has the shape
of ``x``, otherwise hard labels as ``int32`` (the fixtures store labels as floats; a
label that is not an integer cannot be an ``int32`` and is passed as the float it is,
which Chainer then reads as a malformed soft target). ``class_weight`` is a NumPy array
of the case's dtype (Chainer demands a float dtype).

Gradients come from ``Variable.backward()`` with the fixture's cotangent set as the
output's ``grad`` (an array of the output's dtype and shape; when the element counts
differ no gradient is returned).

Modes (``MODES``): ``forward`` runs the function under ``chainer.no_backprop_mode()``
with plain arrays; ``grad`` as above; ``backward-twice`` calls ``y.backward()``, clears
the inputs' gradients with ``Variable.cleargrad()`` (Chainer accumulates into a leaf's
``grad``, as documented), sets ``y.grad`` to the cotangent again (``backward()`` releases
it) and calls ``y.backward()`` again on the same graph; ``hvp``
computes the VJP with ``chainer.grad([y], xs, grad_outputs=[Variable(cotangent)],
enable_double_backprop=True)`` and differentiates it again with
``chainer.grad(vjps, xs, grad_outputs=direction)`` (the VJP is the gradient of
cotangent . y, so its Jacobian is symmetric); a None there (no differentiable path from the
VJP to that input, e.g. F.absolute_error's gy * sign(diff)) is Chainer's zero gradient and
is returned as zeros (see ``_hvp``). The function's own options are passed as the
case gives them: ``F.softmax_cross_entropy(..., enable_double_backprop=False)`` -- the
documented default -- builds a backward that is not differentiable again ("if you need
second or higher derivatives, you need to turn it on explicitly") and Chainer raises its
documented error; for the MXNet-documented SoftmaxCrossEntropyLoss and KLDivLoss, whose
Chainer call is this adapter's mapping, mode hvp turns it on as that documentation says. ``compiled`` is not run: Chainer is define-by-run (see ``MODES``). Everything runs on the CPU with NumPy arrays and
Chainer's default configuration (``chainer.config.debug`` off, as users run it:
Chainer's label-range checks exist only in debug mode). ``build_info()`` records the
configuration.

MXNet-documented losses run through the Chainer function that computes the same
documented quantity after this parameter mapping. Every documented option not in the
Chainer call is applied with Chainer operations (so gradients still come from
``backward``), and only where it is an exact rearrangement (``moveaxis``, ``reshape``, a
label encoding) or a pure rescaling of the loss Chainer computed: ``weight`` and
``sample_weight`` multiply, the documented mean over the non-batch axes is ``F.mean``
over the axes left after ``F.moveaxis(loss, batch_axis, 0)``.

===============================  =====================================================  ==================================
documented loss (mxnet.gluon.    Chainer call                                           mapping, derived from both
loss.)                                                                                  definitions
===============================  =====================================================  ==================================
L2Loss                           ``F.squared_error(pred, label)``                       x (weight/2), then the mean
L1Loss                           ``F.absolute_error(pred, label)``                      then the mean
HuberLoss                        ``F.huber_loss(pred, label, delta=rho, reduce='no')``  Chainer: a^2/2 for abs(a) <= delta,
                                                                                        delta (abs(a) - delta/2) beyond;
                                                                                        documented: a^2/(2 rho), abs(a) -
                                                                                        rho/2, so divide by rho (a Div by
                                                                                        rho, exact for powers of two)
SigmoidBinaryCrossEntropyLoss    ``F.sigmoid_cross_entropy(pred, t, normalize=False,    t = label as int32: only labels 0
(from_sigmoid=False)             reduce='no')``                                         and 1 (Chainer's t is an integer
                                                                                        label); pos_weight: x pos_weight
                                                                                        where label == 1 (with a 0/1
                                                                                        label only that term is nonzero)
LogisticLoss                     ``F.sigmoid_cross_entropy(pred, t, normalize=False,    log(1 + exp(-pred s)) is BCE with
                                 reduce='no')``                                         logits at t = (s + 1)/2: t =
                                                                                        (label + 1)/2 ('signed') or label
                                                                                        ('binary'), int32
SoftmaxCrossEntropyLoss          ``F.softmax_cross_entropy(F.moveaxis(pred, axis, 1),   class axis moved to 1; sparse
(from_logits=False)              t, reduce='no')``                                      label int32 with pred's shape minus
                                                                                        axis, dense label (soft target)
                                                                                        moved like pred; a sample_weight
                                                                                        of label's shape (sparse) weighs
                                                                                        Chainer's loss; the per-position
                                                                                        loss gets its axis back at size 1
KLDivLoss (from_logits=False)    ``F.softmax_cross_entropy(F.moveaxis(pred, axis, 1),   Chainer sums the terms over the
                                 label moved likewise, reduce='no',                     softmax axis, the documented mean
                                 soft_target_loss='kl-divergence')``                    also averages them: divide by
                                                                                        C = pred.shape[axis]
HingeLoss                        ``F.hinge(x, zeros, norm='L1', reduce='no')``,         Chainer's one-of-many hinge with one
                                 x = (pred * label / margin) as (M, 1)                  class and t = 0 is max(0, 1 - x);
                                                                                        max(0, m - z) = m max(0, 1 - z/m):
                                                                                        times margin; margin must be a
                                                                                        positive power of two (exact)
SquaredHingeLoss                 same with ``norm='L2'``                                times margin^2
TripletLoss                      ``F.triplet(pred, positive, negative, margin,          inputs moved to (batch, -1): the
                                 reduce='no')``                                         same max(sum (a-p)^2 - (a-n)^2 +
                                                                                        margin, 0) per sample; x weight
CTCLoss                          ``F.connectionist_temporal_classification(frames,      frames = F.separate(pred) along T;
                                 label, blank_symbol=C-1, input_length=pred_lengths,    label (N, L) int32; label_length
                                 label_length, reduce='no')``                           = label_lengths, or the index of
                                                                                        the first -1 (documented padding)
===============================  =====================================================  ==================================

``mapping()`` returns this table as data (:data:`MIGRATION`), for the migration map.

Unsupported, with the reason ``supports()`` gives: PoissonNLLLoss, CosineEmbeddingLoss and
SDMLLoss (Chainer 7.8.1 has no such function), SigmoidBinaryCrossEntropyLoss with
from_sigmoid=True (no Chainer BCE on probabilities), SoftmaxCrossEntropyLoss and KLDivLoss
with from_logits=True (Chainer's functions always apply log_softmax themselves), soft or
out-of-domain labels where Chainer takes int32 labels, KLDivLoss with a softmax axis that is
the batch axis or a sample_weight that varies along it, SoftmaxCrossEntropyLoss with a dense
label and a sample_weight that varies along the class axis (Chainer returns only the sums
over that axis), and hinge margins that are not positive powers of two (Chainer's margin is 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..protocol import Call, Outcome

try:
    import chainer
    import chainer.functions as F
except ModuleNotFoundError as _err:
    if (_err.name or "").split(".")[0] == "chainer":
        raise
    raise ModuleNotFoundError(
        f"chainer is installed but fails to import: {_err}", name="chainer"
    ) from _err
except Exception as _err:  # e.g. numpy >= 2 (np.sctypes was removed)
    raise ModuleNotFoundError(
        f"chainer is installed but fails to import ({type(_err).__name__}: {_err}); "
        f"Chainer 7.8.1 needs numpy < 2 (this is numpy {np.__version__})",
        name="chainer",
    ) from _err


MX = "mxnet.gluon.loss."
SCE = "chainer.functions.softmax_cross_entropy"

#: the modes of the protocol this backend runs (None) or why not
MODES: dict[str, str | None] = {
    "forward": None,
    "grad": None,
    "compiled": (
        "Chainer 7.8.1 is define-by-run: chainer.functions run eagerly on every call and have no graph or JIT "
        "path (chainer.graph_optimizations.static_graph is an experimental decorator for a Chain's __call__, "
        "not an API of these functions)"
    ),
    "hvp": None,
    "backward-twice": None,
}

#: MXNet-documented losses with no Chainer 7.8.1 function computing them
NO_COUNTERPART = {
    MX + "PoissonNLLLoss": "Chainer 7.8.1 has no Poisson negative log-likelihood function",
    MX + "CosineEmbeddingLoss": "Chainer 7.8.1 has no cosine-embedding loss (F.contrastive is a Euclidean-distance loss)",
    MX + "SDMLLoss": "Chainer 7.8.1 has no smoothed deep metric learning loss",
}


# ---------------------------------------------------------------------- helpers


def _is_integral(a: np.ndarray) -> bool:
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return True
    return bool(np.all(np.isfinite(a)) and np.all(a == np.round(a)) and np.all(np.abs(a) < 2**31))


def _as_shape_of(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` read in row-major order into ``shape`` (the documented 'same number of
    elements'); a value of another size is passed on unchanged for Chainer to reject."""
    value = np.asarray(value)
    return value.reshape(shape) if value.size == int(np.prod(shape, dtype=np.int64)) else value


def _scale(v, factor: float):
    """``v * factor`` as one Chainer multiplication by the factor in v's dtype (skipped for 1)."""
    return v if factor == 1 else v * float(factor)


def _divide(v, divisor: float):
    """``v / divisor`` as a correctly rounded Chainer division (``Variable / scalar`` would
    multiply by a rounded reciprocal)."""
    if divisor == 1:
        return v
    return v / np.full(v.shape, divisor, dtype=v.dtype)


_FROM_CALL = object()


def _weighted_mean(call: Call, elem, weight_factor: float | None = None, sample_weight=_FROM_CALL):
    """The documented reduction of every Gluon loss: elementwise ``sample_weight`` (the
    call's, unless given), mean over the non-batch axes, ``weight`` (``weight_factor``
    replaces it when given)."""
    sw = call.inputs.get("sample_weight") if sample_weight is _FROM_CALL else sample_weight
    if sw is not None:
        elem = elem * F.broadcast_to(np.asarray(sw, dtype=elem.dtype), elem.shape)
    elem = F.moveaxis(elem, call.options.get("batch_axis", 0), 0)
    out = F.mean(elem, axis=tuple(range(1, elem.ndim))) if elem.ndim > 1 else elem
    w = call.options.get("weight") if weight_factor is None else weight_factor
    return out if w is None else _scale(out, w)


def _power_of_two(x: float) -> bool:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0:
        return False
    m, _ = math.frexp(x)
    return m == 0.5


# ------------------------------------------------------------------ the mappings


#: bfloat16 is attempted like every fixture dtype: the inputs are the fixture's
#: ``ml_dtypes.bfloat16`` arrays, as a user holding bfloat16 data would pass them. Chainer 7.8.1
#: has no bfloat16 (its float dtypes are float16, float32 and float64), so what its functions
#: do with them (their type checks) is Chainer's finding, in the expectation file.


@dataclass(frozen=True)
class Mapping:
    chainer: str
    forward: Callable  # (call, xs) -> output Variable; xs: the differentiable inputs as Variables
    check: Callable[[Call], str | None] = lambda call: None


def _inp(call: Call, xs: dict, name: str):
    return xs[name] if name in xs else np.asarray(call.inputs[name])


# chainer.functions.softmax_cross_entropy ------------------------------------------


def _sce_target(x: np.ndarray, t: np.ndarray, dtype: str) -> np.ndarray:
    if t.shape == x.shape:
        return np.asarray(t, dtype=dtype)  # soft targets
    if _is_integral(t):
        return np.asarray(t).astype(np.int32)  # hard labels
    return np.asarray(t, dtype=dtype)  # not representable as int32 labels: as given


def _chainer_sce(call: Call, xs: dict):
    opts = dict(call.options)
    cw = opts.get("class_weight")
    if cw is not None:
        opts["class_weight"] = np.asarray(cw, dtype=call.dtype)
    t = _sce_target(np.asarray(call.inputs["x"]), np.asarray(call.inputs["t"]), call.dtype)
    return F.softmax_cross_entropy(_inp(call, xs, "x"), t, **opts)


# L2Loss, L1Loss, HuberLoss ------------------------------------------------------


def _pred_label(call: Call, xs: dict):
    pred = _inp(call, xs, "pred")
    label = _as_shape_of(np.asarray(call.inputs["label"], dtype=call.dtype), call.inputs["pred"].shape)
    return pred, label


def _l2(call: Call, xs: dict):
    pred, label = _pred_label(call, xs)
    w = call.options.get("weight")
    return _weighted_mean(call, F.squared_error(pred, label), 0.5 * (1.0 if w is None else w))


def _l1(call: Call, xs: dict):
    pred, label = _pred_label(call, xs)
    return _weighted_mean(call, F.absolute_error(pred, label))


def _huber(call: Call, xs: dict):
    pred, label = _pred_label(call, xs)
    rho = call.options["rho"]
    return _weighted_mean(call, _divide(F.huber_loss(pred, label, delta=rho, reduce="no"), rho))


# SigmoidBinaryCrossEntropyLoss, LogisticLoss --------------------------------------


def _check_sbce(call: Call) -> str | None:
    if call.options.get("from_sigmoid"):
        return ("from_sigmoid=True: Chainer 7.8.1 has no binary cross-entropy on probabilities "
                "(F.sigmoid_cross_entropy and F.bernoulli_nll take logits)")
    if not np.all(np.isin(np.asarray(call.inputs["label"]), (0.0, 1.0))):
        return ("labels other than 0 and 1 (soft labels): F.sigmoid_cross_entropy takes int32 labels 0/1 "
                "(t.dtype.kind == 'i' in its type check; -1 means ignore)")
    return None


def _sbce(call: Call, xs: dict):
    pred = _inp(call, xs, "pred")
    shape = call.inputs["pred"].shape
    t = _as_shape_of(np.asarray(call.inputs["label"]), shape).astype(np.int32)
    elem = F.sigmoid_cross_entropy(pred, t, normalize=False, reduce="no")
    pw = call.inputs.get("pos_weight")
    if pw is not None:
        pw_b = F.broadcast_to(np.asarray(pw, dtype=call.dtype), shape).array
        elem = elem * np.where(t == 1, pw_b, np.ones_like(pw_b))
    return _weighted_mean(call, elem)


def _check_logistic(call: Call) -> str | None:
    label = np.asarray(call.inputs["label"])
    allowed = (-1.0, 1.0) if call.options.get("label_format", "signed") == "signed" else (0.0, 1.0)
    if not np.all(np.isin(label, allowed)):
        return (f"labels outside {{{allowed[0]:g}, {allowed[1]:g}}} have no int32 label for "
                "F.sigmoid_cross_entropy under the mapping t = (s + 1)/2")
    return None


def _logistic(call: Call, xs: dict):
    pred = _inp(call, xs, "pred")
    label = _as_shape_of(np.asarray(call.inputs["label"], dtype=np.float64), call.inputs["pred"].shape)
    if call.options.get("label_format", "signed") == "signed":
        label = (label + 1) / 2
    elem = F.sigmoid_cross_entropy(pred, label.astype(np.int32), normalize=False, reduce="no")
    return _weighted_mean(call, elem)


# SoftmaxCrossEntropyLoss, KLDivLoss ------------------------------------------------


def _check_mx_sce(call: Call) -> str | None:
    if call.options.get("from_logits"):
        return ("from_logits=True: F.softmax_cross_entropy always applies log_softmax to x; Chainer "
                "7.8.1 has no cross-entropy on given log-probabilities")
    if call.options.get("sparse_label", True) and not _is_integral(call.inputs["label"]):
        return "non-integer sparse labels: F.softmax_cross_entropy takes hard labels as int32"
    sw = call.inputs.get("sample_weight")
    if not call.options.get("sparse_label", True) and sw is not None:
        p = np.asarray(call.inputs["pred"])
        axis = call.options.get("axis", -1)
        if -p.ndim <= axis < p.ndim:
            k = np.ndim(sw) - p.ndim + axis % p.ndim
            if k >= 0 and np.shape(sw)[k] != 1:
                return ("dense label with a sample_weight that varies along the class axis: "
                        "F.softmax_cross_entropy returns only the sums over the classes, so the "
                        "documented per-term weight cannot be applied")
    return None


def _mx_sce(call: Call, xs: dict):
    pred = _inp(call, xs, "pred")
    p = np.asarray(call.inputs["pred"])
    axis = call.options.get("axis", -1)
    x = F.moveaxis(pred, axis, 1)
    a = axis % p.ndim
    label = np.asarray(call.inputs["label"])
    if call.options.get("sparse_label", True):
        t = _as_shape_of(label, p.shape[:a] + p.shape[a + 1:]).astype(np.int32)
    else:
        t = np.asarray(label, dtype=call.dtype)
        if t.shape == p.shape:
            t = np.moveaxis(t, a, 1)
    loss = F.softmax_cross_entropy(x, t, reduce="no", enable_double_backprop=call.mode == "hvp")
    # documented: sample_weight "broadcastable to the same shape as label"; for a sparse
    # label, one of label's shape weighs Chainer's per-position loss (label-shaped) directly,
    # any other is read with the class axis kept at size 1 (as the oracle reads it)
    sw = call.inputs.get("sample_weight")
    if sw is not None and call.options.get("sparse_label", True) and _broadcasts(np.shape(sw), loss.shape):
        loss = loss * F.broadcast_to(np.asarray(sw, dtype=loss.dtype), loss.shape)
        return _weighted_mean(call, F.expand_dims(loss, a), sample_weight=None)
    return _weighted_mean(call, F.expand_dims(loss, a))


def _broadcasts(shape: tuple[int, ...], to: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, to) == tuple(to)
    except ValueError:
        return False


def _check_kl(call: Call) -> str | None:
    if call.options.get("from_logits", True):
        return ("from_logits=True: Chainer's only KL divergence of distributions "
                "(F.softmax_cross_entropy(soft_target_loss='kl-divergence')) applies log_softmax to x; "
                "Chainer 7.8.1 has none on given log-probabilities")
    p = np.asarray(call.inputs["pred"])
    axis = call.options.get("axis", -1)
    if -p.ndim <= axis < p.ndim:
        a = axis % p.ndim
        b = call.options.get("batch_axis", 0)
        if -p.ndim <= b < p.ndim and b % p.ndim == a:
            return ("axis == batch_axis: F.softmax_cross_entropy returns only the sums over the softmax "
                    "axis, while the documented mean per batch element needs the individual terms")
        sw = call.inputs.get("sample_weight")
        if sw is not None:
            k = np.ndim(sw) - p.ndim + a
            if k >= 0 and np.shape(sw)[k] != 1:
                return ("sample_weight varies along the softmax axis: F.softmax_cross_entropy returns "
                        "only the sums over that axis, so an elementwise weight cannot be applied")
    return None


def _kl(call: Call, xs: dict):
    pred = _inp(call, xs, "pred")
    p = np.asarray(call.inputs["pred"])
    axis = call.options.get("axis", -1)
    x = F.moveaxis(pred, axis, 1)
    a = axis % p.ndim
    t = _as_shape_of(np.asarray(call.inputs["label"], dtype=call.dtype), p.shape)
    if t.shape == p.shape:
        t = np.moveaxis(t, a, 1)
    loss = F.softmax_cross_entropy(
        x, t, reduce="no", soft_target_loss="kl-divergence", enable_double_backprop=call.mode == "hvp"
    )
    loss = _divide(F.expand_dims(loss, a), p.shape[a])
    return _weighted_mean(call, loss)


# HingeLoss, SquaredHingeLoss ------------------------------------------------------


def _check_hinge(call: Call) -> str | None:
    m = call.options.get("margin", 1.0)
    if not _power_of_two(m):
        return (f"margin={m}: F.hinge's margin is fixed at 1; a margin maps onto it by exact scaling "
                "(m max(0, 1 - z/m)) only when it is a positive power of two")
    if not np.all(np.isin(np.asarray(call.inputs["label"]), (-1.0, 1.0))):
        return "labels other than -1/1: the mapping x = pred * label for F.hinge needs signed labels"
    return None


def _hinge(norm: str):
    def forward(call: Call, xs: dict):
        pred, label = _pred_label(call, xs)
        m = float(call.options.get("margin", 1.0))
        z = _divide(pred * label, m)
        shape = z.shape
        h = F.hinge(F.reshape(z, (-1, 1)), np.zeros(z.size, dtype=np.int32), norm=norm, reduce="no")
        h = _scale(F.reshape(h, shape), m if norm == "L1" else m * m)
        return _weighted_mean(call, h)

    return forward


# TripletLoss -----------------------------------------------------------------------


def _triplet(call: Call, xs: dict):
    shape = call.inputs["pred"].shape
    b = call.options.get("batch_axis", 0)

    def prep(name):
        v = _inp(call, xs, name)
        if name != "pred" and v.size == int(np.prod(shape, dtype=np.int64)):
            v = F.reshape(v, shape)
        v = F.moveaxis(v, b, 0)
        return F.reshape(v, (v.shape[0], -1))

    loss = F.triplet(prep("pred"), prep("positive"), prep("negative"), margin=call.options.get("margin", 1), reduce="no")
    sw = call.inputs.get("sample_weight")
    if sw is not None:  # documented in forward's signature: one weight per sample
        sw = np.asarray(sw)
        padded = (1,) * (len(shape) - sw.ndim) + sw.shape
        if any(padded[a] != 1 for a in range(len(shape)) if a != b % max(len(shape), 1)):
            raise ValueError(f"sample_weight of shape {sw.shape} is not one weight per sample of pred {shape}")
        rows = np.moveaxis(np.broadcast_to(sw.reshape(padded), shape), b, 0).reshape(shape[b], -1)[:, 0]
        loss = loss * rows.astype(loss.dtype)
    w = call.options.get("weight")
    return loss if w is None else _scale(loss, w)


# CTCLoss ---------------------------------------------------------------------------


def _ctc(call: Call, xs: dict):
    pred = _inp(call, xs, "pred")
    layout = call.options.get("layout", "NTC")
    frames = list(F.separate(pred, axis=1 if layout == "NTC" else 0))
    label = np.asarray(call.inputs["label"])
    if call.options.get("label_layout", "NT") == "TN":
        label = label.T
    label = label.astype(np.int32)
    n_class = pred.shape[2]
    ll = call.inputs.get("label_lengths")
    if ll is None:
        ll = [list(row).index(-1) if -1 in row else len(row) for row in label.tolist()]
    ll = np.asarray(ll).astype(np.int32)
    il = call.inputs.get("pred_lengths")
    il = None if il is None else np.asarray(il).astype(np.int32)
    loss = F.connectionist_temporal_classification(
        frames, label, blank_symbol=int(n_class - 1), input_length=il, label_length=ll, reduce="no"
    )
    sw = call.inputs.get("sample_weight")
    if sw is not None:
        loss = loss * F.broadcast_to(np.asarray(sw, dtype=loss.dtype), loss.shape)
    w = call.options.get("weight")
    return loss if w is None else _scale(loss, w)


MAPPINGS: dict[str, Mapping] = {
    SCE: Mapping("chainer.functions.softmax_cross_entropy", _chainer_sce),
    MX + "L2Loss": Mapping("chainer.functions.squared_error", _l2),
    MX + "L1Loss": Mapping("chainer.functions.absolute_error", _l1),
    MX + "HuberLoss": Mapping("chainer.functions.huber_loss", _huber),
    MX + "SigmoidBinaryCrossEntropyLoss": Mapping("chainer.functions.sigmoid_cross_entropy", _sbce, _check_sbce),
    MX + "LogisticLoss": Mapping("chainer.functions.sigmoid_cross_entropy", _logistic, _check_logistic),
    MX + "SoftmaxCrossEntropyLoss": Mapping("chainer.functions.softmax_cross_entropy", _mx_sce, _check_mx_sce),
    MX + "KLDivLoss": Mapping("chainer.functions.softmax_cross_entropy", _kl, _check_kl),
    MX + "HingeLoss": Mapping("chainer.functions.hinge", _hinge("L1"), _check_hinge),
    MX + "SquaredHingeLoss": Mapping("chainer.functions.hinge", _hinge("L2"), _check_hinge),
    MX + "TripletLoss": Mapping("chainer.functions.triplet", _triplet),
    MX + "CTCLoss": Mapping("chainer.functions.connectionist_temporal_classification", _ctc),
}


#: the migration map (README: "Chainer: how the MXNet-documented losses map onto Chainer's
#: functions", as data): per loss the Chainer call, the composition around it, and notes;
#: ``F`` is ``chainer.functions``. ``sample_weight``, ``weight`` and ``batch_axis`` are
#: applied with Chainer operations (multiply; ``F.moveaxis`` then ``F.mean``) for every loss.
MIGRATION: dict[str, dict[str, str]] = {
    SCE: {
        "call": "F.softmax_cross_entropy(x, t, **options)",
        "composition": "itself, every option under its own name",
        "notes": "t is a float soft target if it has x's shape, else int32 labels; class_weight in the case's dtype",
    },
    MX + "L2Loss": {
        "call": "F.squared_error(pred, label)",
        "composition": "times weight / 2, then F.mean over the non-batch axes",
        "notes": "",
    },
    MX + "L1Loss": {
        "call": "F.absolute_error(pred, label)",
        "composition": "then F.mean over the non-batch axes, times weight",
        "notes": "",
    },
    MX + "HuberLoss": {
        "call": "F.huber_loss(pred, label, delta=rho, reduce='no')",
        "composition": "divided by rho, then the mean",
        "notes": "Chainer computes a^2/2 and delta (|a| - delta/2); the documented formula is a^2/(2 rho) and "
                 "|a| - rho/2, so divide by rho (exact for powers of two)",
    },
    MX + "SigmoidBinaryCrossEntropyLoss": {
        "call": "F.sigmoid_cross_entropy(pred, t, normalize=False, reduce='no')",
        "composition": "t = label as int32; times pos_weight where label = 1; then the mean",
        "notes": "from_sigmoid=False only; labels 0/1 only (Chainer's t is an integer label)",
    },
    MX + "LogisticLoss": {
        "call": "F.sigmoid_cross_entropy(pred, t, normalize=False, reduce='no')",
        "composition": "t = (label + 1) / 2 ('signed') or label ('binary') as int32; then the mean",
        "notes": "log(1 + exp(-pred s)) is BCE with logits at t = (s + 1)/2",
    },
    MX + "SoftmaxCrossEntropyLoss": {
        "call": "F.softmax_cross_entropy(F.moveaxis(pred, axis, 1), t, reduce='no')",
        "composition": "sparse labels as int32; dense labels are soft targets moved the same way; the "
                       "per-position loss gets its class axis back at size 1, then the mean",
        "notes": "from_logits=False only (Chainer always applies log_softmax)",
    },
    MX + "KLDivLoss": {
        "call": "F.softmax_cross_entropy(F.moveaxis(pred, axis, 1), t, reduce='no', soft_target_loss='kl-divergence')",
        "composition": "label moved like pred; divided by C = pred.shape[axis], then the mean",
        "notes": "from_logits=False only; Chainer sums over the softmax axis, the docs average, so divide by C",
    },
    MX + "HingeLoss": {
        "call": "F.hinge(pred * label / margin as (M, 1), zeros, norm='L1', reduce='no')",
        "composition": "times margin, then the mean",
        "notes": "max(0, m - z) = m max(0, 1 - z/m); margin must be a positive power of two (Chainer's margin is 1)",
    },
    MX + "SquaredHingeLoss": {
        "call": "F.hinge(pred * label / margin as (M, 1), zeros, norm='L2', reduce='no')",
        "composition": "times margin^2, then the mean",
        "notes": "margin must be a positive power of two (Chainer's margin is 1)",
    },
    MX + "TripletLoss": {
        "call": "F.triplet(pred, positive, negative, margin, reduce='no')",
        "composition": "inputs moved to (batch, -1); times sample_weight (one per sample) and weight",
        "notes": "",
    },
    MX + "CTCLoss": {
        "call": "F.connectionist_temporal_classification(F.separate(pred, T axis), label, blank_symbol=C-1, "
                "input_length=pred_lengths, label_length, reduce='no')",
        "composition": "label (N, L) int32; label_length is label_lengths, or the position of the first -1; "
                       "times sample_weight and weight",
        "notes": "",
    },
}
assert MIGRATION.keys() == MAPPINGS.keys()


# ----------------------------------------------------------------------- backend


class ChainerBackend:
    name = "chainer"
    version = chainer.__version__

    def build_info(self) -> dict:
        from chainer.backends import cuda, intel64

        try:
            import chainerx

            chx = bool(chainerx.is_available())
        except Exception:
            chx = False
        return {
            "chainer": chainer.__version__,
            "numpy": np.__version__,
            "chainerx_available": chx,
            "cupy_available": bool(cuda.available),
            "cudnn_enabled": bool(cuda.cudnn_enabled),
            "ideep_available": bool(intel64.is_ideep_available()),
            "device": "@numpy (CPU)",
            "config": {
                "debug": bool(chainer.config.debug),
                "type_check": bool(chainer.config.type_check),
                "use_ideep": str(chainer.config.use_ideep),
                "dtype": str(chainer.config.dtype),
            },
        }

    def mapping(self) -> dict[str, dict[str, str]]:
        """The migration map: :data:`MIGRATION` (losses in ``NO_COUNTERPART`` are left out)."""
        return {loss: dict(entry) for loss, entry in MIGRATION.items()}

    modes = MODES

    def supports(self, call: Call) -> str | None:
        if call.loss in NO_COUNTERPART:
            return NO_COUNTERPART[call.loss]
        mapping = MAPPINGS.get(call.loss)
        if mapping is None:
            return f"no Chainer function mapped to {call.loss}"
        return mapping.check(call) or MODES.get(call.mode, f"unknown mode {call.mode!r}")

    def run(self, call: Call) -> Outcome:
        mapping = MAPPINGS[call.loss]
        if call.mode == "forward":
            with chainer.no_backprop_mode():
                y = mapping.forward(call, {})
            return Outcome(np.array(y.array if isinstance(y, chainer.Variable) else y, copy=True), {})
        xs = {name: chainer.Variable(np.asarray(call.inputs[name], dtype=call.dtype)) for name in call.wrt}
        with chainer.using_config("enable_backprop", True):
            y = mapping.forward(call, xs)
        if not isinstance(y, chainer.Variable):
            y = chainer.Variable(np.asarray(y))
        output = np.array(y.array, copy=True)
        grads: dict[str, np.ndarray] = {}
        hvp: dict[str, np.ndarray] = {}
        if call.wrt and call.cotangent is not None:
            ct = np.asarray(call.cotangent)
            if ct.size == y.size:
                head = np.array(ct.reshape(y.shape), dtype=y.dtype)
                if call.mode == "hvp":
                    return Outcome(output, *self._hvp(y, head, xs, call))
                y.grad = head
                y.backward()
                if call.mode == "backward-twice":  # the same graph again, the leaves' grads cleared
                    for v in xs.values():
                        v.cleargrad()
                    y.grad = head  # (backward() releases the output's grad unless retain_grad=True)
                    y.backward()
                for name, v in xs.items():
                    if v.grad is not None:
                        grads[name] = np.array(v.grad, copy=True)
        return Outcome(output, grads, hvp)

    @staticmethod
    def _hvp(y, head: np.ndarray, xs: dict, call: Call) -> tuple[dict, dict]:
        names = list(xs)
        variables = [xs[n] for n in names]
        vjps = chainer.grad([y], variables, grad_outputs=[chainer.Variable(head)], enable_double_backprop=True)
        grads = {n: np.array(g.array, copy=True) for n, g in zip(names, vjps) if g is not None}
        direction = call.direction or {}
        outs = [
            (g, chainer.Variable(np.asarray(direction[n], dtype=call.dtype)))
            for n, g in zip(names, vjps) if g is not None and n in direction
        ]
        if not outs:
            return grads, {}
        second = chainer.grad([g for g, _ in outs], variables, grad_outputs=[d for _, d in outs])
        # chainer.grad gives None for an input no differentiable path of the VJP reaches (the
        # VJP of F.absolute_error is gy * sign(diff), loss/absolute_error.py:32, with sign(diff)
        # a constant array): Chainer's zero gradient, which its own gradient_check.py
        # (check_backward, lines 674-678: a None gradient adds nothing to the directional
        # derivative) reads as 0. It is returned as zeros, so it is judged like any HVP: it
        # passes where the exact HVP is 0 and fails where it is not.
        hvp = {
            n: np.array(h.array, copy=True) if h is not None else np.zeros(xs[n].shape, dtype=call.dtype)
            for n, h in zip(names, second)
            if n in grads
        }
        return grads, hvp


backend = ChainerBackend()
