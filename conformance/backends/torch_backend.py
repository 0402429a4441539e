"""The ``torch`` backend: PyTorch 2.13.0 (CPU) losses from ``torch.nn.functional``, called
as a user calls them, with compositions of public torch operations where torch has no one
function for the documented loss.

Every documented loss (the 14 ``mxnet.gluon.loss`` losses and
``chainer.functions.softmax_cross_entropy``) maps onto torch's public API; the mapping is
data, :data:`MAPPING` (the "migration map"), one entry per loss id::

    MAPPING[loss_id] = {
        "call": "F.smooth_l1_loss(pred, label, beta=rho, reduction='none')",   # the torch call(s)
        "composition": "...",  # how the documented quantity is built around that call
        "notes": "...",        # where torch's own definition differs, and why this composition
        "unsupported": {option: {"mapped": [values], "why": "..."}},  # option values without a torch counterpart
    }

(``F`` is ``torch.nn.functional``.) The shared Gluon conventions are applied with torch
operations so that gradients still come from autograd: an input documented as "the same
number of elements" as pred is ``reshape``d into pred's shape (one of another size is passed
unchanged, for torch to reject or broadcast); ``sample_weight`` is
``torch.broadcast_to(sample_weight, elementwise_loss.shape)`` times the elementwise loss;
the documented mean over every axis but ``batch_axis`` is ``movedim(loss, batch_axis,
0).mean(dim=(1, ...))``; ``weight`` multiplies the result.

Inputs become tensors of the call's dtype (``torch.from_numpy``; integer inputs as
``int64``); ``bfloat16`` inputs (ml_dtypes arrays) go through float32, which holds every
bfloat16 value exactly, and outputs come back through float32 into ml_dtypes' bfloat16.
The output is returned as torch computes it: a dtype or shape torch changes is left for the
harness's shape check to report.

Modes (``call.mode``):

* ``forward``: the loss under ``torch.no_grad()``;
* ``grad``: the inputs in ``call.wrt`` with ``requires_grad``, and
  ``torch.autograd.grad(out, inputs, grad_outputs=cotangent, materialize_grads=True)``;
* ``hvp``: the VJP with ``create_graph=True``, then ``torch.autograd.grad(vjp, inputs,
  grad_outputs=direction)``: the derivative of the VJP in the direction, H v (a VJP that
  does not depend on the inputs has derivative 0);
* ``compiled``: ``grad`` through ``torch.compile`` (Inductor, the default backend) of the
  loss's forward; dynamo's recompile limit is raised and hitting it is an error, so a call
  never falls back to eager silently. If ``torch.compile`` does not work here,
  ``supports()`` says why;
* ``backward-twice``: ``out.backward(cotangent, retain_graph=True)``, the ``.grad``
  cleared, and ``out.backward(cotangent)`` again: the second backward's gradients.

Each call runs in two steps: :func:`prepare` turns the call's NumPy inputs into tensors
(and derives, eagerly, what integer inputs give: class-index targets, CTC lengths, the count
of non-ignored labels), then ``FORWARD[loss](options, tensors)`` runs torch operations only,
which is what ``torch.compile`` traces in mode ``compiled``.

Findings of the modes beyond ``grad`` (exercised in tests/test_torch_expectations.py):
``hvp`` of CTCLoss raises, because torch defines no derivative of ``_ctc_loss_backward``
(tools/autograd/derivatives.yaml); ``torch.compile`` works on this machine's CPU (Inductor
builds C++ kernels) and agrees with eager, at 3-8 s per newly compiled graph, except
where Inductor's decompositions compute differently: LogisticLoss's gradient through
torch/_decomp/decompositions.py soft_margin_loss_backward (sigmoid(t) - 1, which cancels).

``build_info()`` records the version, the build (``torch.__config__``), the thread count and
the CPU capability, because kernels differ with them; ``mapping()`` returns :data:`MAPPING`
(the protocol's optional migration-map method), which the results' provenance records.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..protocol import MODES, Call, Outcome

try:
    import torch
    import torch.nn.functional as F
except ModuleNotFoundError as _err:
    if (_err.name or "").split(".")[0] == "torch":
        raise
    raise ModuleNotFoundError(f"torch is installed but fails to import: {_err}", name="torch") from _err
except Exception as _err:  # a broken build (e.g. a missing shared library)
    raise ModuleNotFoundError(
        f"torch is installed but fails to import ({type(_err).__name__}: {_err})", name="torch"
    ) from _err


MX = "mxnet.gluon.loss."
SCE = "chainer.functions.softmax_cross_entropy"

DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


# ----------------------------------------------------------------- the migration map

#: loss id -> the torch call, the composition around it, notes, and what has no counterpart
MAPPING: dict[str, dict[str, Any]] = {
    MX + "L2Loss": {
        "call": "F.mse_loss(pred, label, reduction='none')",
        "composition": "mean over the non-batch axes of sample_weight * mse_loss, times weight / 2",
        "notes": "torch's MSELoss has no factor 1/2 and no weight; reduction='mean' averages over every "
                 "element (batch included), so reduction='none' and the per-sample mean",
        "unsupported": {},
    },
    MX + "L1Loss": {
        "call": "F.l1_loss(pred, label, reduction='none')",
        "composition": "mean over the non-batch axes of sample_weight * l1_loss, times weight",
        "notes": "reduction='none' and the per-sample mean, as for every Gluon loss",
        "unsupported": {},
    },
    MX + "HuberLoss": {
        "call": "F.smooth_l1_loss(pred, label, beta=rho, reduction='none')",
        "composition": "mean over the non-batch axes of sample_weight * smooth_l1_loss, times weight",
        "notes": "Gluon's rho is smooth_l1_loss's beta (0.5 d^2 / beta inside, |d| - beta / 2 outside); "
                 "F.huber_loss(delta=rho) is rho times it; beta=0 is accepted and gives the L1 loss",
        "unsupported": {},
    },
    MX + "SigmoidBinaryCrossEntropyLoss": {
        "call": "F.binary_cross_entropy_with_logits(pred, label, pos_weight=pos_weight, reduction='none') "
                 "(from_sigmoid=False); F.binary_cross_entropy(pred, label, reduction='none') (from_sigmoid=True)",
        "composition": "from_sigmoid=True with pos_weight: F.binary_cross_entropy(pred, ones, weight=label * "
                       "pos_weight) + F.binary_cross_entropy(pred, zeros, weight=1 - label) (the two terms of "
                       "the documented formula); then mean over the non-batch axes of sample_weight * loss, "
                       "times weight",
        "notes": "F.binary_cross_entropy has no pos_weight (its weight rescales the whole term), hence the "
                 "two-term composition; it clamps each log at -100 (a loss of 100, not inf, at probability 0 or 1) "
                 "and its gradient's denominator at 1e-12",
        "unsupported": {},
    },
    MX + "SoftmaxCrossEntropyLoss": {
        "call": "F.cross_entropy(movedim(pred, axis, 1), target, reduction='none') (from_logits=False); "
                 "F.nll_loss(movedim(pred, axis, 1), target, reduction='none') (from_logits=True, sparse)",
        "composition": "sparse: target = label as int64; dense: target = sample_weight * label (class "
                       "probabilities, moved like pred), from_logits=True dense: -sum over the class axis of "
                       "where(label == 0, 0, target * pred); the per-position loss times a sparse "
                       "sample_weight, mean over the non-batch axes, times weight",
        "notes": "label_smoothing=0 (the default); cross_entropy's soft targets take the class "
                 "probabilities along dim 1; torch has no cross-entropy of soft targets on given "
                 "log-probabilities, hence the composition for from_logits=True with a dense label",
        "unsupported": {},
    },
    MX + "KLDivLoss": {
        "call": "F.kl_div(logp, label, reduction='none')",
        "composition": "logp = pred (from_logits=True) or F.log_softmax(pred, dim=axis); mean over the "
                       "non-batch axes of sample_weight * kl_div, times weight",
        "notes": "kl_div's input is the log-probability and its target the probability (label * (log label "
                 "- input), 0 where label is 0); reduction='batchmean' divides by the batch size only",
        "unsupported": {},
    },
    MX + "CTCLoss": {
        "call": "F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=C-1, reduction='none', "
                 "zero_infinity=False)",
        "composition": "log_probs = F.log_softmax(pred, dim=2) as (T, N, C) (moved from NTC); targets = label "
                       "(N, S) int64 (transposed from TN); input_lengths = pred_lengths or T; target_lengths = "
                       "label_lengths or the index of the first -1; times sample_weight and weight",
        "notes": "Gluon's blank is the last class (alphabet_size - 1), torch's default blank is 0; "
                 "reduction='mean' divides by the target lengths, so reduction='none'",
        "unsupported": {},
    },
    MX + "HingeLoss": {
        "call": "F.hinge_embedding_loss(pred * label, -ones, margin=margin, reduction='none')",
        "composition": "hinge_embedding_loss with target -1 is max(0, margin - x): x = pred * label; mean over "
                       "the non-batch axes of sample_weight * it, times weight",
        "notes": "torch's HingeEmbeddingLoss is x for target 1 and max(0, margin - x) for target -1: "
                 "only its target -1 branch is the SVM hinge; F.multi_margin_loss is the multi-class hinge",
        "unsupported": {},
    },
    MX + "SquaredHingeLoss": {
        "call": "F.hinge_embedding_loss(pred * label, -ones, margin=margin, reduction='none') ** 2",
        "composition": "the HingeLoss composition squared elementwise, then the same mean and weight",
        "notes": "torch has no squared hinge loss (F.multi_margin_loss(p=2) is the multi-class one)",
        "unsupported": {},
    },
    MX + "LogisticLoss": {
        "call": "F.soft_margin_loss(pred, s, reduction='none')",
        "composition": "s = label (label_format='signed') or 2 * label - 1 ('binary'); mean over the "
                       "non-batch axes of sample_weight * it, times weight",
        "notes": "SoftMarginLoss is log(1 + exp(-s x)), computed as log1p(exp(.)): it overflows to inf (and its "
                 "gradient to nan) for large margins, where F.binary_cross_entropy_with_logits(pred, (s + 1) / 2), "
                 "the same quantity, stays finite",
        "unsupported": {},
    },
    MX + "TripletLoss": {
        "call": "F.triplet_margin_with_distance_loss(pred, positive, negative, distance_function="
                 "squared_euclidean, margin=margin, swap=False, reduction='none')",
        "composition": "inputs moved to (batch, -1) (positive and negative first read into pred's shape); "
                       "squared_euclidean(a, b) = ((a - b) ** 2).sum(-1); times weight",
        "notes": "F.triplet_margin_loss uses the (non-squared) p-norm distance plus eps=1e-6, not the "
                 "documented squared Euclidean distance, hence the distance-function form",
        "unsupported": {},
    },
    MX + "PoissonNLLLoss": {
        "call": "F.poisson_nll_loss(pred, target, log_input=from_logits, full=compute_full, eps=epsilon, "
                 "reduction='none')",
        "composition": "mean over every element of sample_weight * poisson_nll_loss, times weight, as (1, 1)",
        "notes": "log_input is Gluon's from_logits; full adds the same Stirling term where target > 1",
        "unsupported": {},
    },
    MX + "CosineEmbeddingLoss": {
        "call": "F.cosine_embedding_loss(input1, input2, label, margin=margin, reduction='none')",
        "composition": "inputs moved to (batch, -1) (input2 first read into input1's shape); times the "
                       "per-sample sample_weight and weight",
        "notes": "torch's cosine_embedding_loss takes (N, D) or (D,) inputs only, hence the reshape; it adds "
                 "EPSILON = 1e-12 to both squared norms (a zero vector gives cos 0, float64 values move by ~1e-12)",
        "unsupported": {},
    },
    MX + "SDMLLoss": {
        "call": "F.kl_div(F.log_softmax(-d, dim=1), labels, reduction='none').sum(1)",
        "composition": "rows on batch_axis; d[i, j] = ((x1[i] - x2[j]) ** 2).sum(); labels = (1 - s) on the "
                       "diagonal, s / (B - 1) elsewhere; times weight",
        "notes": "torch has no SDML loss: a composition of public operations (torch.cdist is avoided: it "
                 "computes distances by matrix products for larger inputs)",
        "unsupported": {},
    },
    SCE: {
        "call": "F.cross_entropy(x, t, weight=class_weight, ignore_index=ignore_label, reduction='none')",
        "composition": "hard labels t as int64, soft targets t of x's shape; soft_target_loss="
                       "'kl-divergence' adds sum_c torch.special.xlogy(t, t); reduce='mean': the sum over "
                       "instances divided by the non-ignored instances (normalize=True) or by N",
        "notes": "torch's reduction='mean' with a class weight divides by the sum of the targets' weights, "
                 "not by the count Chainer documents, so reduction='none' and the division; label_smoothing=0",
        "unsupported": {
            "reduce": {"mapped": ["mean", "no"],
                       "why": "only the documented 'mean' and 'no' map (onto reduction='none' and a division)"},
            "soft_target_loss": {"mapped": ["cross-entropy", "kl-divergence"],
                                 "why": "only the documented 'cross-entropy' and 'kl-divergence' map (onto F.cross_entropy, "
                                        "plus xlogy(t, t) for the latter)"},
        },
    },
}


# ------------------------------------------------------------------------ helpers
#
# A loss is computed in two steps: ``prepare`` turns the call's NumPy inputs into tensors
# (floats in the call's dtype, the differentiable ones requiring grad; labels, lengths and
# counts derived from integer inputs), eagerly; ``forward(o, T)`` is torch operations only
# on the options ``o`` and those tensors ``T``, so that ``torch.compile`` can trace it.


def _tensor(value: Any, dtype: str) -> torch.Tensor:
    """A float input as a tensor of ``dtype`` (bfloat16 through float32, which holds it exactly)."""
    a = np.asarray(value)
    if dtype == "bfloat16":
        return torch.from_numpy(np.array(a, dtype=np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.array(a, dtype=dtype))


def _long(value: Any) -> torch.Tensor:
    return torch.from_numpy(np.array(value, dtype=np.int64))


def _is_integral(a: Any) -> bool:
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return True
    return bool(np.all(np.isfinite(a)) and np.all(a == np.round(a)))


def prepare(call: Call) -> dict[str, Any]:
    """The call's inputs as tensors: the float ones in the call's dtype (those in
    ``call.wrt`` requiring grad unless mode is forward), integer ones as int64; plus the
    derived entries a loss needs (see ``_PREPARE``)."""
    grad = call.mode != "forward"
    T: dict[str, Any] = {}
    for name, value in call.inputs.items():
        if value is None:
            continue
        a = np.asarray(value)
        if a.dtype.kind in "iub":
            T[name] = _long(a)
        else:
            t = _tensor(a, call.dtype)
            T[name] = t.requires_grad_(True) if grad and name in call.wrt else t
    extra = _PREPARE.get(call.loss)
    if extra is not None:
        T.update(extra(call))
    return T


def _like(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``x`` read in row-major order into ``shape`` (the documented "same number of
    elements"); one of another size is passed on unchanged for torch to judge."""
    return x.reshape(shape) if x.numel() == math.prod(shape) else x


def _batch_mean(o: dict, elem: torch.Tensor, sample_weight: torch.Tensor | None, factor: float | None = None) -> torch.Tensor:
    """The documented reduction of every Gluon loss: elementwise ``sample_weight``, mean
    over the non-batch axes, ``weight`` (``factor`` replaces it when given)."""
    if sample_weight is not None:
        elem = elem * torch.broadcast_to(sample_weight, elem.shape)
    elem = torch.movedim(elem, o.get("batch_axis", 0), 0)
    out = elem.mean(dim=tuple(range(1, elem.ndim))) if elem.ndim > 1 else elem
    w = o.get("weight") if factor is None else factor
    return out if w is None else out * w


def _pred_label(T: dict) -> tuple[torch.Tensor, torch.Tensor]:
    pred = T["pred"]
    return pred, _like(T["label"], pred.shape)


# ------------------------------------------------------------------ the losses


def _l2(o: dict, T: dict) -> torch.Tensor:
    pred, label = _pred_label(T)
    w = o.get("weight")
    return _batch_mean(o, F.mse_loss(pred, label, reduction="none"), T.get("sample_weight"), (1.0 if w is None else w) / 2)


def _l1(o: dict, T: dict) -> torch.Tensor:
    pred, label = _pred_label(T)
    return _batch_mean(o, F.l1_loss(pred, label, reduction="none"), T.get("sample_weight"))


def _huber(o: dict, T: dict) -> torch.Tensor:
    pred, label = _pred_label(T)
    return _batch_mean(o, F.smooth_l1_loss(pred, label, reduction="none", beta=o["rho"]), T.get("sample_weight"))


def _sbce(o: dict, T: dict) -> torch.Tensor:
    pred, label = _pred_label(T)
    pw = T.get("pos_weight")
    if not o.get("from_sigmoid", False):
        elem = F.binary_cross_entropy_with_logits(pred, label, reduction="none", pos_weight=pw)
    elif pw is None:
        elem = F.binary_cross_entropy(pred, label, reduction="none")
    else:
        ones, zeros = torch.ones_like(pred), torch.zeros_like(pred)
        elem = (F.binary_cross_entropy(pred, ones, weight=label * pw, reduction="none")
                + F.binary_cross_entropy(pred, zeros, weight=1 - label, reduction="none"))
    return _batch_mean(o, elem, T.get("sample_weight"))


def _logistic(o: dict, T: dict) -> torch.Tensor:
    pred, label = _pred_label(T)
    s = label if o.get("label_format", "signed") == "signed" else 2 * label - 1
    return _batch_mean(o, F.soft_margin_loss(pred, s, reduction="none"), T.get("sample_weight"))


def _prepare_mx_sce(call: Call) -> dict[str, Any]:
    label = call.inputs["label"]
    if call.options.get("sparse_label", True) and _is_integral(label):
        return {"target": _long(label)}  # class indices
    return {}


def _mx_sce(o: dict, T: dict) -> torch.Tensor:
    pred = T["pred"]
    axis = o.get("axis", -1)
    a = axis % pred.ndim if -pred.ndim <= axis < pred.ndim else axis
    x = torch.movedim(pred, axis, 1)
    sw = T.get("sample_weight")
    if o.get("sparse_label", True):
        t = T.get("target", T["label"])  # a label that is no integer goes to torch as it is
        loss = F.nll_loss(x, t, reduction="none") if o.get("from_logits", False) else F.cross_entropy(x, t, reduction="none")
        # documented: sample_weight "broadcastable to the same shape as label": one of label's
        # shape weighs the per-position loss directly, any other is read with the class axis
        # kept at size 1 (MXNet's keepdims form, as the oracle reads it)
        if sw is not None and _broadcasts(tuple(sw.shape), tuple(loss.shape)):
            return _batch_mean(o, torch.unsqueeze(loss * torch.broadcast_to(sw, loss.shape), a), None)
        return _batch_mean(o, torch.unsqueeze(loss, a), sw)
    label = T["label"]
    target = label if sw is None else label * torch.broadcast_to(sw, label.shape)
    if o.get("from_logits", False):
        terms = torch.where(label == 0, torch.zeros_like(pred), target * pred)
        return _batch_mean(o, -terms.sum(dim=axis, keepdim=True), None)
    t = torch.movedim(target, axis, 1) if target.shape == pred.shape else target
    return _batch_mean(o, torch.unsqueeze(F.cross_entropy(x, t, reduction="none"), a), None)


def _broadcasts(shape: tuple[int, ...], to: tuple[int, ...]) -> bool:
    try:
        return tuple(torch.broadcast_shapes(shape, to)) == tuple(to)
    except RuntimeError:
        return False


def _kl(o: dict, T: dict) -> torch.Tensor:
    pred, label = _pred_label(T)
    logp = pred if o.get("from_logits", True) else F.log_softmax(pred, dim=o.get("axis", -1))
    return _batch_mean(o, F.kl_div(logp, label, reduction="none"), T.get("sample_weight"))


def _prepare_ctc(call: Call) -> dict[str, Any]:
    pred = np.asarray(call.inputs["pred"])
    label = np.asarray(call.inputs["label"])
    if call.options.get("label_layout", "NT") == "TN":
        label = label.T
    ll = call.inputs.get("label_lengths")
    if ll is None:  # documented: padded with -1
        ll = [row.index(-1) if -1 in row else len(row) for row in label.tolist()]
    il = call.inputs.get("pred_lengths")
    if il is None and pred.ndim == 3:
        t_axis, n_axis = (1, 0) if call.options.get("layout", "NTC") == "NTC" else (0, 1)
        il = [pred.shape[t_axis]] * pred.shape[n_axis]
    return {"targets": _long(label), "input_lengths": _long(il), "target_lengths": _long(ll)}


def _ctc(o: dict, T: dict) -> torch.Tensor:
    pred = T["pred"]
    if o.get("layout", "NTC") == "NTC":
        pred = pred.transpose(0, 1)  # to (T, N, C)
    loss = F.ctc_loss(
        F.log_softmax(pred, dim=2), T["targets"], T["input_lengths"], T["target_lengths"],
        blank=pred.shape[2] - 1, reduction="none", zero_infinity=False,
    )
    sw = T.get("sample_weight")
    if sw is not None:
        loss = loss * torch.broadcast_to(sw, loss.shape)
    w = o.get("weight")
    return loss if w is None else loss * w


def _hinge_terms(o: dict, T: dict) -> torch.Tensor:
    pred, label = _pred_label(T)
    z = pred * label
    return F.hinge_embedding_loss(z, -torch.ones_like(z), margin=o.get("margin", 1.0), reduction="none")


def _hinge(o: dict, T: dict) -> torch.Tensor:
    return _batch_mean(o, _hinge_terms(o, T), T.get("sample_weight"))


def _squared_hinge(o: dict, T: dict) -> torch.Tensor:
    return _batch_mean(o, _hinge_terms(o, T) ** 2, T.get("sample_weight"))


def squared_euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The documented distance of TripletLoss: the squared L2 norm of each row's difference."""
    return ((a - b) ** 2).sum(dim=-1)


def _rows(x: torch.Tensor, batch_axis: int) -> torch.Tensor:
    x = torch.movedim(x, batch_axis, 0)
    return x.reshape(x.shape[0], -1)


def _triplet(o: dict, T: dict) -> torch.Tensor:
    pred = T["pred"]
    b = o.get("batch_axis", 0)
    a, p, n = (_rows(_like(T[k], pred.shape), b) for k in ("pred", "positive", "negative"))
    loss = F.triplet_margin_with_distance_loss(
        a, p, n, distance_function=squared_euclidean, margin=o.get("margin", 1), swap=False, reduction="none"
    )
    sw = T.get("sample_weight")
    if sw is not None:
        # one weight per sample: broadcast to pred's shape with size 1 off the batch axis
        shape = [1] * pred.ndim
        shape[b] = pred.shape[b]
        loss = loss * torch.broadcast_to(sw, tuple(shape)).reshape(-1)
    w = o.get("weight")
    return loss if w is None else loss * w


def _poisson(o: dict, T: dict) -> torch.Tensor:
    pred = T["pred"]
    elem = F.poisson_nll_loss(
        pred, _like(T["target"], pred.shape), log_input=o.get("from_logits", True), full=o.get("compute_full", False),
        eps=o.get("epsilon", 1e-08), reduction="none",
    )
    sw = T.get("sample_weight")
    if sw is not None:
        elem = elem * torch.broadcast_to(sw, elem.shape)
    out = elem.mean()
    w = o.get("weight")
    return (out if w is None else out * w).reshape(1, 1)


def _cosine(o: dict, T: dict) -> torch.Tensor:
    in1 = T["input1"]
    b = o.get("batch_axis", 0)
    u = _rows(in1, b)
    v = _rows(_like(T["input2"], in1.shape), b)
    loss = F.cosine_embedding_loss(u, v, T["label"], margin=o.get("margin", 0), reduction="none")
    sw = T.get("sample_weight")
    if sw is not None:
        # one weight per sample: broadcast to input1's shape with size 1 off the batch axis
        shape = [1] * in1.ndim
        shape[b] = in1.shape[b]
        loss = loss * torch.broadcast_to(sw, tuple(shape)).reshape(-1)
    w = o.get("weight")
    return loss if w is None else loss * w


def _sdml(o: dict, T: dict) -> torch.Tensor:
    b = o.get("batch_axis", 0)
    x1 = torch.movedim(T["x1"], b, 0)
    x2 = torch.movedim(T["x2"], b, 0)
    d = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(dim=2)
    n = x1.shape[0]
    s = float(o.get("smoothing_parameter", 0.3))
    off = s / (n - 1) if n > 1 else math.inf
    labels = torch.full((n, n), off, dtype=d.dtype).fill_diagonal_(1 - s)
    loss = F.kl_div(F.log_softmax(-d, dim=1), labels, reduction="none").sum(dim=1)
    w = o.get("weight")
    return loss if w is None else loss * w


def _prepare_chainer_sce(call: Call) -> dict[str, Any]:
    x = np.asarray(call.inputs["x"])
    t = np.asarray(call.inputs["t"])
    o = call.options
    extra: dict[str, Any] = {}
    cw = o.get("class_weight")
    if cw is not None:
        extra["class_weight"] = _tensor(np.asarray(cw, dtype=np.float64), call.dtype)
    if t.shape == x.shape:  # soft targets: every instance counts
        extra["count"] = int(t.size // t.shape[1]) if t.ndim > 1 else 1
    else:
        if _is_integral(t):
            extra["target"] = _long(t)
        extra["count"] = int(np.sum(t != o.get("ignore_label", -1)))
    return extra


def _chainer_sce(o: dict, T: dict) -> torch.Tensor:
    x = T["x"]
    cw = T.get("class_weight")
    if "target" not in T and tuple(T["t"].shape) == tuple(x.shape):
        t = T["t"]
        loss = F.cross_entropy(x, t, weight=cw, reduction="none")
        if o.get("soft_target_loss", "cross-entropy") == "kl-divergence":
            loss = loss + torch.special.xlogy(t, t).sum(dim=1)
    else:
        t = T.get("target", T["t"])  # labels that are no integers go to torch as they are
        loss = F.cross_entropy(x, t, weight=cw, ignore_index=o.get("ignore_label", -1), reduction="none")
    if o.get("reduce", "mean") == "no":
        return loss
    divisor = max(T["count"], 1) if o.get("normalize", True) else x.shape[0]
    return loss.sum() / divisor


FORWARD: dict[str, Callable[[dict, dict], torch.Tensor]] = {
    MX + "L2Loss": _l2,
    MX + "L1Loss": _l1,
    MX + "HuberLoss": _huber,
    MX + "SigmoidBinaryCrossEntropyLoss": _sbce,
    MX + "SoftmaxCrossEntropyLoss": _mx_sce,
    MX + "KLDivLoss": _kl,
    MX + "CTCLoss": _ctc,
    MX + "HingeLoss": _hinge,
    MX + "SquaredHingeLoss": _squared_hinge,
    MX + "LogisticLoss": _logistic,
    MX + "TripletLoss": _triplet,
    MX + "PoissonNLLLoss": _poisson,
    MX + "CosineEmbeddingLoss": _cosine,
    MX + "SDMLLoss": _sdml,
    SCE: _chainer_sce,
}
assert FORWARD.keys() == MAPPING.keys()

_PREPARE: dict[str, Callable[[Call], dict[str, Any]]] = {
    MX + "SoftmaxCrossEntropyLoss": _prepare_mx_sce,
    MX + "CTCLoss": _prepare_ctc,
    SCE: _prepare_chainer_sce,
}


# ----------------------------------------------------------------------- backend


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        return t.float().numpy(force=True).astype(ml_dtypes.bfloat16)
    return np.array(t.numpy(force=True), copy=True)  # force: a ZeroTensor (e.g. sgn's derivative) too


def _configure_dynamo() -> None:
    """Never let dynamo fall back to eager: a compiled call that cannot compile is an error."""
    import torch._dynamo.config as dc

    for name, value in (("recompile_limit", 1_000_000), ("accumulated_recompile_limit", 1_000_000),
                        ("fail_on_recompile_limit_hit", True)):
        if hasattr(dc, name):
            setattr(dc, name, value)


class TorchBackend:
    name = "torch"
    version = torch.__version__.split("+")[0]
    #: every mode of the protocol runs (``compiled`` is still declined per call by
    #: ``supports()`` with the reason when ``torch.compile`` does not work here)
    modes: tuple[str, ...] = MODES

    def __init__(self) -> None:
        self._compile_problem: str | None = None
        self._compile_probed = False
        self._compiled: dict[str, Callable] = {}

    def build_info(self) -> dict:
        return {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "debug": bool(torch.version.debug),
            "cuda": torch.version.cuda,
            "device": "cpu",
            "num_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkldnn": bool(torch.backends.mkldnn.is_available()),
            "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
            "parallel_info": torch.__config__.parallel_info().splitlines()[:6],
        }

    def mapping(self) -> dict[str, dict[str, Any]]:
        """The migration map (:data:`MAPPING`), recorded in the results' provenance
        (see :func:`conformance.protocol.mapping_of`)."""
        return copy.deepcopy(MAPPING)

    # -- supports
    def supports(self, call: Call) -> str | None:
        mapping = MAPPING.get(call.loss)
        if mapping is None:
            return f"no torch mapping for {call.loss}"
        if call.dtype not in DTYPES:
            return f"{call.loss}: dtype {call.dtype!r} is not one of torch's float dtypes here ({', '.join(DTYPES)})"
        if call.mode not in MODES:
            return f"{call.loss}: mode {call.mode!r} is not a mode of the torch backend"
        if call.dtype == "bfloat16":
            try:
                import ml_dtypes  # noqa: F401
            except ModuleNotFoundError:
                return "bfloat16 needs ml_dtypes (pip install ml_dtypes) for its NumPy representation"
        for option, rule in mapping["unsupported"].items():
            value = call.options.get(option)
            if option in call.options and value not in rule["mapped"]:
                return f"{call.loss}: option {option}={value!r} has no torch mapping: {rule['why']}"
        if call.mode == "compiled":
            return self._compile_support()
        return None

    def _compile_support(self) -> str | None:
        if not self._compile_probed:
            self._compile_probed = True
            try:
                _configure_dynamo()
                f = torch.compile(lambda a: (a * a).sum())
                f(torch.ones(2))
            except Exception as err:
                first = (str(err).strip().splitlines() or [""])[0][:200]
                self._compile_problem = f"torch.compile does not work here: {type(err).__name__}: {first}"
        return self._compile_problem

    # -- run
    def run(self, call: Call) -> Outcome:
        forward = FORWARD[call.loss]
        options = dict(call.options)
        T = prepare(call)
        if call.mode == "forward" or not call.wrt:
            with torch.no_grad():
                y = forward(options, T)
            return Outcome(_to_numpy(y))
        if call.mode == "compiled":
            forward = self._compiled_forward(call.loss)
        y = forward(options, T)
        output = _to_numpy(y)
        if call.cotangent is None or np.size(call.cotangent) != y.numel():
            return Outcome(output)
        ct = _tensor(np.asarray(call.cotangent), call.dtype).reshape(y.shape).to(y.dtype)
        names = list(call.wrt)
        inputs = [T[n] for n in names]
        if call.mode == "backward-twice":
            y.backward(ct, retain_graph=True)
            for x in inputs:
                x.grad = None
            y.backward(ct)
            grads = [x.grad if x.grad is not None else torch.zeros_like(x) for x in inputs]
            return Outcome(output, {n: _to_numpy(g) for n, g in zip(names, grads)})
        hvp = call.mode == "hvp"
        grads = torch.autograd.grad(y, inputs, grad_outputs=ct, create_graph=hvp, allow_unused=True, materialize_grads=True)
        outcome = Outcome(output, {n: _to_numpy(g) for n, g in zip(names, grads)})
        if hvp:
            direction = call.direction or {}
            pairs = [(g, _tensor(direction[n], call.dtype).to(g.dtype)) for n, g in zip(names, grads)
                     if g.requires_grad and n in direction]
            if pairs:
                h = torch.autograd.grad([g for g, _ in pairs], inputs, grad_outputs=[d for _, d in pairs],
                                        allow_unused=True, materialize_grads=True)
            else:  # the VJP does not depend on the inputs: its derivative is 0
                h = [torch.zeros_like(x) for x in inputs]
            outcome.hvp = {n: _to_numpy(v) for n, v in zip(names, h)}
        return outcome

    def _compiled_forward(self, loss: str) -> Callable:
        if loss not in self._compiled:
            _configure_dynamo()
            self._compiled[loss] = torch.compile(FORWARD[loss])
        return self._compiled[loss]


backend = TorchBackend()
