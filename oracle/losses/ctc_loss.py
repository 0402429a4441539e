"""mxnet.gluon.loss.CTCLoss -- "Connectionist Temporal Classification Loss."

Documented (MXNet 1.9.1 docstring, and the Graves et al. 2006 paper it cites): ``pred`` is
an "unnormalized prediction tensor (before softmax)" of layout 'NTC' or 'TNC', "index
alphabet_size-1 is reserved for internal use as blank label", ``label`` is a "zero-based
label tensor" padded "with -1 to make a rectangular label tensor", and "output loss has
shape (batch_size,)". With y[t, k] = softmax(pred[n, t, :])[k], T_n frames and label
sequence l_n (see the readings below for how T_n and l_n are read):

    out[n] = weight * sample_weight[n] * -log p(l_n | pred[n]),
    p(l | x) = sum over paths pi in {0..C-1}^T_n with B(pi) = l of prod_t y[t, pi_t]

where B collapses repeated symbols and then removes blanks. p is computed exactly (in
probability space, mpf has no underflow) by the forward-backward recursion over the
extended label l' = (blank, l_1, blank, l_2, ..., l_L, blank), S = 2L + 1:

    alpha_t(s) = y[t, l'_s] * (alpha_{t-1}(s) + alpha_{t-1}(s-1) + [skip] alpha_{t-1}(s-2))
    beta_t(s)  = sum over s' in {s, s+1, s+2 if skip} of y[t+1, l'_s'] * beta_{t+1}(s')
    p = alpha_{T-1}(S-1) + alpha_{T-1}(S-2)          (skip: l'_s' != blank and != l'_{s'-2})

(beta here excludes frame t's own emission), with gamma_t(k) = sum_{s: l'_s = k}
alpha_t(s) beta_t(s) / p the posterior probability that a valid path emits k at frame t.

Gradient (through the softmax):  d out[n] / d pred[n, t, k] =
    weight * sample_weight[n] * (y[t, k] - gamma_t(k))   for t < T_n,   0 for t >= T_n.

Scale (for the tolerance model): -log p = sum_t lse_t - log sum_pi exp(sum_t x[t, pi_t]),
so a path's score adds up the terms x[t, pi_t] - lse_t; a rounding error in a path's
score reaches the result weighted by that path's posterior probability. The scale is the
posterior-expected magnitude of those terms plus the value:

    scale[n] = |weight * sample_weight[n]| *
               (sum_{t < T_n} (|lse_t| + sum_k (gamma_t(k) + y[t, k]) |x[t, k]|) + |-log p|)

(sum_k y[t, k] |x[t, k]| is the error the terms of lse_t carry, oracle.arrays.lse_terms; for
one frame and a one-symbol label this is softmax cross-entropy's scale, plus the value).
The term scale follows ``/work/shared/DESIGN.md`` ("for softmax cross-entropy, |x_t| +
|logsumexp(x)|"), the magnitudes of the terms the documented formula adds, which is what
backward stability under a relative input perturbation allows (a logit of 1000 perturbed by
eps moves the loss by 1000 eps); issue 11 item 3 requires that "logaddexp instead of max-
shift" is a correct variant that passes everything, which a shift-invariant scale denied
(ruling of issue 13; see oracle.arrays.log_softmax_terms). n_terms is T * C, the number of pred elements
reduced into one output.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from flint import fmpq

from .. import arrays as A
from .. import cases as C
from .. import real as R
from ..catalog import InputSpec, LossSpec, OptionSpec, Reading
from ..conventions import broadcast_sample_weight, weight_factor, weight_option
from ..errors import InputError
from ..real import real as mpf
from ..result import Forward, Gradient

LOSS_ID = "mxnet.gluon.loss.CTCLoss"

SPEC = LossSpec(
    id=LOSS_ID,
    summary="Connectionist Temporal Classification loss: -log p(label | softmax(pred)) per sample.",
    formula=(
        "out[n] = weight * sample_weight[n] * -log sum_{pi in {0..C-1}^T_n, B(pi) = label_n} "
        "prod_t softmax(pred[n, t, :])[pi_t]; blank = C-1; B collapses repeats then drops blanks"
    ),
    options=(
        OptionSpec(
            "layout",
            "NTC",
            "enum",
            "Layout of prediction tensor. 'N', 'T', 'C' stands for batch size, sequence length, "
            "and alphabet_size respectively.",
            choices=("NTC", "TNC"),
        ),
        OptionSpec(
            "label_layout",
            "NT",
            "enum",
            "Layout of the labels. 'N', 'T' stands for batch size, and sequence length respectively.",
            choices=("NT", "TN"),
        ),
        weight_option(None),
    ),
    inputs=(
        InputSpec(
            "pred",
            "unnormalized prediction tensor (before softmax), shape (batch_size, sequence_length, "
            "alphabet_size) for 'NTC' or (sequence_length, batch_size, alphabet_size) for 'TNC'; "
            "index alphabet_size-1 is the blank label",
            differentiable=True,
        ),
        InputSpec(
            "label",
            "zero-based label tensor, (batch_size, label_sequence_length) for 'NT' or "
            "(label_sequence_length, batch_size) for 'TN', padded with -1",
            kind="int",
        ),
        InputSpec(
            "pred_lengths",
            "length of each pred entry, shape (batch_size,) (default: sequence_length)",
            kind="int",
            optional=True,
        ),
        InputSpec(
            "label_lengths",
            "length of each label entry, shape (batch_size,) (default: up to the first -1)",
            kind="int",
            optional=True,
        ),
        InputSpec(
            "sample_weight",
            "per-sample weighting, broadcastable to the loss's shape (batch_size,)",
            optional=True,
        ),
    ),
    output_shape="(batch_size,)",
    readings=(
        Reading(
            "padding and -1",
            "We then need to pad each sequence with `-1` to make a rectangular `label` tensor "
            "(docstring example); operator CTCLoss: 'If false, the lengths are derived from the "
            "first occurrence of the value of `padding_mask`.'",
            "Without label_lengths, label sequence n is the entries before the first -1 in its "
            "row (all of them if there is none); entries after the first -1 are ignored, "
            "whatever they hold. An all -1 row is the empty label sequence.",
        ),
        Reading(
            "label_lengths",
            "label_lengths: optional (default None), used for specifying the length of each "
            "entry when different `label` entries in the same batch have different lengths.",
            "With label_lengths, label sequence n is the first label_lengths[n] entries of its "
            "row; label_lengths[n] must be in [0, label_sequence_length] and those entries must "
            "be labels (a -1 among them is an error); entries beyond are ignored.",
        ),
        Reading(
            "blank label and label domain",
            "Note that in the last dimension, index `alphabet_size-1` is reserved for internal "
            "use as blank label. So `alphabet_size` is one plus the actual alphabet size.",
            "Valid labels are 0 .. alphabet_size-2; a label equal to alphabet_size-1 (the blank), "
            "at least alphabet_size, or negative other than the -1 padding is an error.",
        ),
        Reading(
            "label too long for its frames",
            "loss = -log p(label | pred) (Graves et al. 2006, the cited reference); a path must "
            "put a blank between equal adjacent labels.",
            "A label sequence needs L + (number of equal adjacent pairs) frames. When that "
            "exceeds T_n no path produces it: p = 0 and the documented value -log p is +inf, "
            "which is the expected value (out[n] = weight * sample_weight[n] * +inf). As p is 0 "
            "for every pred, the derivative does not exist (gamma = alpha beta / p is 0/0): "
            "the VJP elements of such a sample are nan (undefined), and its term scale is inf. "
            "Such input is valid (the documentation does not rule it out); a backend that "
            "raises on it raises where a value exists.",
        ),
        Reading(
            "pred_lengths",
            "pred_lengths: optional (default None), used for specifying the length of each "
            "entry when different `pred` entries in the same batch have different lengths.",
            "Sample n uses frames 0 .. pred_lengths[n]-1 (default: all sequence_length frames); "
            "pred_lengths[n] must be in [0, sequence_length]; later frames do not affect the "
            "loss and get zero gradient. pred_lengths[n] = 0 is the empty path: probability 1 "
            "for the empty label (loss 0), infeasible for any other.",
        ),
        Reading(
            "sample_weight",
            "hybrid_forward(self, F, pred, label, pred_lengths=None, label_lengths=None, "
            "sample_weight=None) -- not in the Inputs list; _apply_weighting: 'Per sample "
            "weighting. Must be broadcastable to the same shape as loss.'",
            "sample_weight multiplies the per-sample loss; it must broadcast to (batch_size,) "
            "without changing that shape (e.g. (batch_size,), (1,) or ()); a (batch_size, 1) "
            "weight, which MXNet's broadcast_mul would turn into a (batch_size, batch_size) "
            "output, is rejected. It is not differentiated.",
        ),
        Reading(
            "no normalization",
            "Outputs: - **loss**: output loss has shape `(batch_size,)`.",
            "out[n] is the plain negative log-likelihood of sample n (no averaging over frames "
            "or labels); weight None is a factor of 1.",
        ),
        Reading(
            "operator doc contradicts itself on the padding value",
            "operator CTCLoss, blank_label: 'If \"last\", last label value alphabet_size-1 is "
            "reserved for blank label instead ... and the padding mask is 0.' -- versus 'The "
            "padding value is 0 when blank_label is \"first\", and -1 otherwise.'",
            "Gluon's CTCLoss calls the operator with blank_label='last' and its own docstring "
            "pads with -1; the padding value is -1 (0 is an ordinary label).",
        ),
        Reading(
            "finite predictions",
            "pred: unnormalized prediction tensor (before softmax).",
            "pred holds finite real numbers; NaN or infinite logits are rejected (softmax of "
            "them is undefined).",
        ),
    ),
    source="mxnet/gluon/loss.py (MXNet 1.9.1), class CTCLoss; src/operator/nn/ctc_loss.cc",
)


# ----------------------------------------------------------------------- input parsing


def _fail(message: str) -> None:
    raise InputError(f"{LOSS_ID}: {message}")


def _parse(x: dict, options: dict):
    """pred as (N, T, C), the label sequences, the frame counts and the sample weights."""
    pred = x["pred"]
    if pred.ndim != 3:
        _fail(
            f"input pred has shape {pred.shape}; expected 3 dimensions "
            f"({'batch_size, sequence_length' if options['layout'] == 'NTC' else 'sequence_length, batch_size'}"
            f", alphabet_size) for layout {options['layout']!r}"
        )
    ntc = pred if options["layout"] == "NTC" else np.swapaxes(pred, 0, 1)
    n_batch, n_time, n_class = ntc.shape
    if n_class < 1:
        _fail(f"input pred has shape {pred.shape}; expected alphabet_size >= 1 (the blank)")
    for v in pred.ravel():
        if not R.isfinite(v):
            _fail(f"input pred holds {v}; expected finite real numbers")

    label = x["label"]
    if label.ndim != 2:
        _fail(f"input label has shape {label.shape}; expected 2 dimensions for label_layout "
              f"{options['label_layout']!r}")
    label_nt = label if options["label_layout"] == "NT" else label.T
    if label_nt.shape[0] != n_batch:
        _fail(
            f"input label has shape {label.shape} (batch size {label_nt.shape[0]} for label_layout "
            f"{options['label_layout']!r}); expected batch size {n_batch} as in pred {pred.shape}"
        )
    max_label = label_nt.shape[1]

    def lengths(name: str, upper: int) -> np.ndarray | None:
        v = x.get(name)
        if v is None:
            return None
        if v.shape != (n_batch,):
            _fail(f"input {name} has shape {v.shape}; expected (batch_size,) = ({n_batch},)")
        for i, n in enumerate(v.tolist()):
            if not 0 <= n <= upper:
                _fail(f"input {name}[{i}] = {n}; expected an int in [0, {upper}]")
        return v

    pred_lengths = lengths("pred_lengths", n_time)
    label_lengths = lengths("label_lengths", max_label)

    seqs: list[list[int]] = []
    frames: list[int] = []
    for n in range(n_batch):
        row = [int(v) for v in label_nt[n]]
        if label_lengths is None:
            cut = row.index(-1) if -1 in row else len(row)
        else:
            cut = int(label_lengths[n])
        seq = row[:cut]
        for j, v in enumerate(seq):
            if v == -1:
                _fail(
                    f"input label for sample {n} holds the padding value -1 at position {j}, "
                    f"within its label_lengths[{n}] = {cut} entries; expected labels in "
                    f"[0, {n_class - 2}]"
                )
            if not 0 <= v <= n_class - 2:
                what = " (the blank label, reserved)" if v == n_class - 1 else ""
                _fail(
                    f"input label for sample {n} holds {v}{what} at position {j}; expected "
                    f"labels in [0, {n_class - 2}] (alphabet_size {n_class}, blank "
                    f"{n_class - 1}) or -1 padding"
                )
        t_n = n_time if pred_lengths is None else int(pred_lengths[n])
        seqs.append(seq)
        frames.append(t_n)

    sw = broadcast_sample_weight(LOSS_ID, x.get("sample_weight"), (n_batch,), like="loss")
    return ntc, seqs, frames, sw


# ------------------------------------------------------------------ forward-backward


def feasible(seq: list[int], t_n: int) -> bool:
    """Whether some path of t_n frames collapses to ``seq``: it needs its length plus one
    blank between each pair of equal adjacent labels."""
    return len(seq) + sum(1 for a, b in zip(seq, seq[1:]) if a == b) <= t_n


def _sample_ctc(xs: np.ndarray, seq: list[int], t_n: int, blank: int):
    """-log p, y, gamma (both (t_n, C)) and lse (t_n,) for one sample's first t_n frames;
    a feasible ``seq`` only (:func:`feasible`)."""
    n_class = xs.shape[1]
    if t_n == 0:
        return mpf(0), [], [], []
    lse = [A.logsumexp(xs[t], axis=0)[()] for t in range(t_n)]
    y = [[R.exp(xs[t, k] - lse[t]) for k in range(n_class)] for t in range(t_n)]
    ext = [blank]
    for v in seq:
        ext += [v, blank]
    n_s = len(ext)
    skip = [s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(n_s)]

    zero = mpf(0)
    alpha = [[zero] * n_s for _ in range(t_n)]
    alpha[0][0] = y[0][ext[0]]
    if n_s > 1:
        alpha[0][1] = y[0][ext[1]]
    for t in range(1, t_n):
        prev = alpha[t - 1]
        for s in range(n_s):
            acc = prev[s]
            if s >= 1:
                acc += prev[s - 1]
            if skip[s]:
                acc += prev[s - 2]
            alpha[t][s] = y[t][ext[s]] * acc

    beta = [[zero] * n_s for _ in range(t_n)]
    beta[t_n - 1][n_s - 1] = mpf(1)
    if n_s > 1:
        beta[t_n - 1][n_s - 2] = mpf(1)
    for t in range(t_n - 2, -1, -1):
        nxt = beta[t + 1]
        for s in range(n_s):
            acc = y[t + 1][ext[s]] * nxt[s]
            if s + 1 < n_s:
                acc += y[t + 1][ext[s + 1]] * nxt[s + 1]
            if s + 2 < n_s and skip[s + 2]:
                acc += y[t + 1][ext[s + 2]] * nxt[s + 2]
            beta[t][s] = acc

    p = alpha[t_n - 1][n_s - 1] + (alpha[t_n - 1][n_s - 2] if n_s > 1 else zero)
    if not p > 0:  # pragma: no cover - feasibility is checked before
        raise AssertionError("CTC probability is zero for a feasible label")
    gamma = [[zero] * n_class for _ in range(t_n)]
    for t in range(t_n):
        for s in range(n_s):
            gamma[t][ext[s]] += alpha[t][s] * beta[t][s]
        gamma[t] = [g / p for g in gamma[t]]
    return -R.log(p), y, gamma, lse


# ------------------------------------------------ values the formula proves rational


def _tied(row) -> bool:
    """Whether a frame's logits are all equal exact inputs: softmax is then exactly 1/C."""
    first = row[0]
    return all(isinstance(v, R.Real) and v.b is not None and v.is_exact for v in row) and all(
        v.b == first.b for v in row
    )


def _live_states(ext: list[int], skip: list[bool], t_n: int) -> list[list[bool]]:
    """Per frame, the states of the extended label some valid path occupies: reachable
    from the start (alpha_t(s) > 0) and able to reach the end (beta_t(s) > 0). Which
    states these are depends on the label and t_n only, never on pred: every y > 0."""
    n_s = len(ext)
    fwd = [[False] * n_s for _ in range(t_n)]
    fwd[0][0] = True
    if n_s > 1:
        fwd[0][1] = True
    for t in range(1, t_n):
        for s in range(n_s):
            fwd[t][s] = fwd[t - 1][s] or (s >= 1 and fwd[t - 1][s - 1]) or (skip[s] and fwd[t - 1][s - 2])
    bwd = [[False] * n_s for _ in range(t_n)]
    bwd[t_n - 1][n_s - 1] = True
    if n_s > 1:
        bwd[t_n - 1][n_s - 2] = True
    for t in range(t_n - 2, -1, -1):
        for s in range(n_s):
            bwd[t][s] = bwd[t + 1][s] or (s + 1 < n_s and bwd[t + 1][s + 1]) or (
                s + 2 < n_s and skip[s + 2] and bwd[t + 1][s + 2]
            )
    return [[fwd[t][s] and bwd[t][s] for s in range(n_s)] for t in range(t_n)]


def _rational_gamma(ext: list[int], skip: list[bool], t_n: int, n_class: int) -> list[list[fmpq]]:
    """gamma_t(k) of a sample whose frames are all tied (y = 1/C everywhere), exactly: the
    forward-backward recursion of :func:`_sample_ctc` in rational arithmetic."""
    n_s = len(ext)
    y = fmpq(1, n_class)
    zero = fmpq(0)
    alpha = [[zero] * n_s for _ in range(t_n)]
    alpha[0][0] = y
    if n_s > 1:
        alpha[0][1] = y
    for t in range(1, t_n):
        for s in range(n_s):
            acc = alpha[t - 1][s] + (alpha[t - 1][s - 1] if s >= 1 else zero)
            if skip[s]:
                acc += alpha[t - 1][s - 2]
            alpha[t][s] = y * acc
    beta = [[zero] * n_s for _ in range(t_n)]
    beta[t_n - 1][n_s - 1] = fmpq(1)
    if n_s > 1:
        beta[t_n - 1][n_s - 2] = fmpq(1)
    for t in range(t_n - 2, -1, -1):
        for s in range(n_s):
            acc = beta[t + 1][s] + (beta[t + 1][s + 1] if s + 1 < n_s else zero)
            if s + 2 < n_s and skip[s + 2]:
                acc += beta[t + 1][s + 2]
            beta[t][s] = y * acc
    p = alpha[t_n - 1][n_s - 1] + (alpha[t_n - 1][n_s - 2] if n_s > 1 else zero)
    gamma = [[zero] * n_class for _ in range(t_n)]
    for t in range(t_n):
        for s in range(n_s):
            gamma[t][ext[s]] += alpha[t][s] * beta[t][s]
        gamma[t] = [g / p for g in gamma[t]]
    return gamma


def _known_dnll(xs: np.ndarray, seq: list[int], t_n: int, blank: int) -> list[list[fmpq | None]]:
    """y[t, k] - gamma_t(k) where the formula proves it rational (its exact value), else
    None (:func:`oracle.real.known_exactly` puts it in place of the enclosure).

    Some VJP elements are rational numbers that no enclosure can prove: an exact 0 by
    symmetry (a ball around 0 never shrinks to a point) and a dyadic value that is a
    rounding tie of a float format (the two ends of any ball around it round apart; e.g.
    -3/4 * 0.3 is halfway between two float64 numbers). Where the inputs make y - gamma rational, it is computed
    exactly instead, and the enclosure is checked to contain it:

    * a *tied* frame (its logits all equal) has y[t, k] = 1/C exactly, whatever the logit;
    * a valid path occupies state s at frame t iff s is reachable from the start and can
      reach the end, which depends on the label and T_n only (every y > 0). As
      sum_s alpha_t(s) beta_t(s) = p at every t, gamma_t(k) = 0 exactly when no such state
      has symbol k, and 1 exactly when all of them do (the empty label: the blank at every
      frame; a label with exactly its needed frames: one alignment);
    * a sample whose frames are all tied has y = 1/C everywhere: alpha, beta, p and gamma are
      rational, and the recursion is run in exact rational arithmetic (python-flint fmpq).

    So y - gamma is exact for a tied frame with gamma 0 or 1, and for every frame of an
    all-tied sample (its symmetric zeros included). Elsewhere it is a ratio of sums of
    products of exponentials of unequal logits, which the enclosures prove by narrowing; a
    rational value there that these rules missed would still raise OracleError at the cap
    (naming the element), never be written unproven.
    """
    n_class = xs.shape[1]
    if t_n == 0:
        return []
    ext = [blank]
    for v in seq:
        ext += [v, blank]
    skip = [s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(len(ext))]
    tied = [_tied(list(xs[t])) for t in range(t_n)]
    if all(tied):
        gamma = _rational_gamma(ext, skip, t_n, n_class)
        return [[fmpq(1, n_class) - gamma[t][k] for k in range(n_class)] for t in range(t_n)]
    live = _live_states(ext, skip, t_n)
    out: list[list[fmpq | None]] = []
    for t in range(t_n):
        symbols = {ext[s] for s in range(len(ext)) if live[t][s]}
        row: list[fmpq | None] = [None] * n_class
        if tied[t]:
            for k in range(n_class):
                if k not in symbols:  # no valid path emits k at t: gamma_t(k) = 0
                    row[k] = fmpq(1, n_class)
                elif symbols == {k}:  # every valid path emits k at t: gamma_t(k) = 1
                    row[k] = fmpq(1, n_class) - 1
        out.append(row)
    return out


def forward(x: dict, options: dict) -> Forward:
    ntc, seqs, frames, sw = _parse(x, options)
    n_batch, n_time, n_class = ntc.shape
    w = weight_factor(options)
    value = A.zeros((n_batch,))
    scale = A.zeros((n_batch,))
    dnll = A.zeros(ntc.shape)  # d(-log p_n) / d pred[n, t, k] in (N, T, C)
    factor = []
    for n in range(n_batch):
        f = w * (sw[n] if sw is not None else mpf(1))
        factor.append(f)
        if not feasible(seqs[n], frames[n]):  # p = 0: -log p = +inf, no derivative
            value[n] = f * R.INF
            scale[n] = R.INF
            for idx in np.ndindex(ntc.shape[1:]):
                dnll[(n, *idx)] = R.NAN
            continue
        nll, y, gamma, lse = _sample_ctc(ntc[n], seqs[n], frames[n], n_class - 1)
        terms = mpf(0)
        for t in range(frames[n]):
            # the terms of log y_tk = x_tk - logsumexp(x_t) (DESIGN.md: |x| + |logsumexp(x)|)
            terms += abs(lse[t]) + R.fsum((gamma[t][k] + y[t][k]) * abs(ntc[n, t, k]) for k in range(n_class))
            for k in range(n_class):
                dnll[n, t, k] = y[t][k] - gamma[t][k]
        value[n] = f * nll
        scale[n] = abs(f) * (terms + abs(nll))
        # the elements the formula proves rational, exactly (see _known_dnll)
        for t, row in enumerate(_known_dnll(ntc[n], seqs[n], frames[n], n_class - 1)):
            for k, q in enumerate(row):
                if q is not None and isinstance(dnll[n, t, k], R.Real):
                    dnll[n, t, k] = R.known_exactly(dnll[n, t, k], q)

    def vjp(ct: np.ndarray) -> dict[str, Gradient]:
        g = A.zeros(ntc.shape)
        for n in range(n_batch):
            c = ct[n] * factor[n]
            for idx in np.ndindex(ntc.shape[1:]):
                g[(n, *idx)] = c * dnll[(n, *idx)]
        if options["layout"] == "TNC":
            g = np.ascontiguousarray(np.swapaxes(g, 0, 1))
        return {"pred": Gradient.exact(g)}

    return Forward(value, scale, n_time * n_class, vjp)


# ----------------------------------------------------------------------------- cases


def _labels(rng, n_batch: int, max_label: int, n_class: int, frames: list[int]) -> list[list[int]]:
    """Random label sequences (possibly with repeats), each feasible in its frames."""
    out = []
    for t_n in frames:
        while True:
            length = rng.randint(0, max_label)
            seq = [rng.randrange(0, n_class - 1) for _ in range(length)]
            need = length + sum(1 for a, b in zip(seq, seq[1:]) if a == b)
            if need <= t_n:
                break
        out.append(seq)
    return out


def _pad(seqs: list[list[int]], width: int, fill=None) -> np.ndarray:
    """(N, width) int64 label matrix; rows padded with -1 (or the given fill per row)."""
    rows = []
    for i, s in enumerate(seqs):
        tail = [-1] * (width - len(s)) if fill is None else list(fill[i])[: width - len(s)]
        rows.append(list(s) + tail)
    return np.asarray(rows, dtype=np.int64).reshape(len(seqs), width)


def _layouts(pred_ntc: np.ndarray, label_nt: np.ndarray, options: dict) -> dict:
    pred = pred_ntc if options.get("layout", "NTC") == "NTC" else np.swapaxes(pred_ntc, 0, 1).copy()
    label = label_nt if options.get("label_layout", "NT") == "NT" else label_nt.T.copy()
    return {"pred": pred, "label": label}


def _case(name, dtype, pred_ntc, label_nt, options=None, tags=("regular",), extra=None, **kw):
    options = dict(options or {})
    inputs = _layouts(pred_ntc, label_nt, options)
    inputs.update(extra or {})
    return C.Case(name, inputs, dtype, options, tags=tags, **kw)


def _ints(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)

#: why an option value has no case of a regime (fixtures/COVERAGE.md, oracle.coverage.gap_reason)
REGIME_GAPS = {("*", "long"): "ruled out as a plain sum: the loss is -log of a sum over alignments computed by the forward recursion, each step combining at most three paths in log space; no reduction adds thousands of terms"}


def cases() -> Iterator[C.Case]:
    sources: dict[str, tuple[C.Case, np.ndarray, np.ndarray]] = {}  # float32 regime cases, NTC / NT
    for dtype in C.DTYPES:
        # every option variant, regular values, padded labels with repeats
        for opts in C.option_variants(SPEC):
            name = f"{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(LOSS_ID, name)
            pred = C.normal(rng, (3, 5, 4), 1.0, dtype)
            label = _pad([[0, 1], [2, 2, 1], [1, 0, 1]], 4)
            yield _case(name, dtype, pred, label, opts, tags=("regular", "label"))

        # lengths shorter than the padded sizes, in both layout pairs
        for opts in ({}, {"layout": "TNC", "label_layout": "TN"}):
            name = f"lengths-{C.variant_name(opts)}-{dtype}"
            rng = C.rng_for(LOSS_ID, name)
            pred = C.normal(rng, (3, 6, 4), 1.0, dtype)
            label = _ints([[1, 0, 2, 2], [2, 2, -1, -1], [0, 0, 0, 1]])
            yield _case(
                name, dtype, pred, label, opts, tags=("regular", "shape", "label"),
                extra={"pred_lengths": _ints([4, 6, 5]), "label_lengths": _ints([2, 1, 3])},
                note="label_lengths cut rows short (sample 0 ignores its trailing 2, 2); "
                "frames beyond pred_lengths get zero gradient",
            )
        rng = C.rng_for(LOSS_ID, f"pred_lengths-only-{dtype}")
        yield _case(
            f"pred_lengths-only-{dtype}", dtype, C.normal(rng, (2, 6, 3), 1.0, dtype),
            _ints([[0, 1, -1], [1, -1, -1]]), tags=("shape",),
            extra={"pred_lengths": _ints([3, 1])},
        )
        rng = C.rng_for(LOSS_ID, f"label_lengths-only-{dtype}")
        yield _case(
            f"label_lengths-only-{dtype}", dtype, C.normal(rng, (2, 5, 3), 1.0, dtype),
            _ints([[0, 1, 1], [1, 0, 1]]), tags=("label",),
            extra={"label_lengths": _ints([3, 0])},
            note="sample 1: label_lengths 0 is the empty sequence although its row holds labels",
        )

        # label edge cases
        rng = C.rng_for(LOSS_ID, f"repeats-{dtype}")
        yield _case(
            f"repeats-tight-{dtype}", dtype, C.normal(rng, (2, 5, 3), 1.0, dtype),
            _ints([[1, 1, 1], [0, 0, -1]]), tags=("label", "boundary"),
            extra={"pred_lengths": _ints([5, 3])},
            note="each label needs exactly its frames (blanks between equal labels): one alignment",
        )
        yield _case(
            f"empty-label-{dtype}", dtype, C.normal(rng, (2, 4, 3), 1.0, dtype),
            _ints([[-1, -1], [1, -1]]), tags=("label",),
            note="sample 0 is the empty label: p = prod_t y[t, blank]",
        )
        yield _case(
            f"junk-after-padding-{dtype}", dtype, C.normal(rng, (2, 5, 4), 1.0, dtype),
            _ints([[1, -1, 0, 2], [-1, 2, 2, 2]]), tags=("label",),
            note="the sequence ends at the first -1; what follows is ignored",
        )
        yield _case(
            f"zero-frames-{dtype}", dtype, C.normal(rng, (2, 3, 3), 1.0, dtype),
            _ints([[-1], [0]]), tags=("boundary", "shape"),
            extra={"pred_lengths": _ints([0, 2])},
            note="sample 0 has no frames and the empty label: the empty path, p = 1, loss 0",
        )

        # minimum shapes
        yield _case(
            f"minimum-{dtype}", dtype, C.in_dtype([[[0.5, -0.25]]], dtype), _ints([[0]]),
            tags=("shape",), note="batch 1, one frame, one label, alphabet_size 2",
        )
        yield _case(
            f"blank-only-alphabet-{dtype}", dtype, C.in_dtype([[[1.5], [-3.0]]], dtype),
            _ints([[-1]]), tags=("shape", "boundary"),
            note="alphabet_size 1 (only the blank): y = 1, loss exactly 0",
        )

        # sample_weight and weight
        for sw_shape, what in (((3,), "per-sample"), ((1,), "broadcast")):
            rng = C.rng_for(LOSS_ID, f"sample_weight-{what}-{dtype}")
            yield _case(
                f"sample_weight-{what}-{dtype}", dtype, C.normal(rng, (3, 4, 3), 1.0, dtype),
                _ints([[0, 1], [1, 1], [-1, -1]]), {"weight": 0.5}, tags=("shape",),
                extra={"sample_weight": C.uniform(rng, sw_shape, -1.0, 2.0, dtype)},
            )

        # regimes
        big = {"float16": 300.0, "float32": 3000.0, "float64": 30000.0}[dtype]
        rng = C.rng_for(LOSS_ID, f"extreme-{dtype}")
        pred = C.normal(rng, (2, 5, 4), big, dtype)
        dom = np.full((5, 4), -big)
        for t, k in enumerate([0, 3, 1, 1, 3]):  # path 0 - 1 1 - : collapses to [0, 1]
            dom[t, k] = big
        pred[1] = C.in_dtype(dom, dtype)
        ext_label = _ints([[2, 0, 2], [0, 1, -1]])
        case = _case(
            f"extreme-{dtype}", dtype, pred, ext_label,
            {"layout": "TNC"}, tags=("extreme",),
            note="logits overflow a naive exp; sample 1's label path dominates (loss ~ exp(-2*big))",
        )
        sources[f"extreme-{dtype}"] = (case, pred, ext_label)
        yield case
        margin = {"float16": 8.0, "float32": 18.0, "float64": 38.0}[dtype]
        tiny = np.full((2, 4, 3), -margin)
        for n, path in enumerate(([0, 0, 1, 1], [2, 1, 2, 2])):
            for t, k in enumerate(path):
                tiny[n, t, k] = 0.0
        tiny_pred, tiny_label = C.in_dtype(tiny, dtype), _ints([[0, 1], [1, -1]])
        case = _case(
            f"tiny-{dtype}", dtype, tiny_pred, tiny_label,
            tags=("tiny",),
            note="one alignment dominates: the loss is a few exp(-margin), all digits must survive",
        )
        sources[f"tiny-{dtype}"] = (case, tiny_pred, tiny_label)
        yield case
        yield _case(
            f"tie-{dtype}", dtype, C.in_dtype(np.full((2, 4, 3), 7.5), dtype),
            _ints([[0, 1], [1, 1]]), tags=("tie",),
            note="equal logits: y = 1/3, p = (number of alignments) / 3**4",
        )

        # invalid inputs
        rng = C.rng_for(LOSS_ID, f"invalid-{dtype}")
        p3 = C.normal(rng, (2, 3, 3), 1.0, dtype)
        yield _case(
            f"invalid-blank-label-{dtype}", dtype, p3, _ints([[0, 2], [1, -1]]), tags=("invalid",),
            invalid="label alphabet_size-1 is reserved for the blank",
        )
        yield _case(
            f"invalid-label-range-{dtype}", dtype, p3, _ints([[0, 3], [-2, -1]]), tags=("invalid",),
            invalid="labels must be in [0, alphabet_size-2] or the -1 padding",
        )
        yield _case(
            f"invalid-padding-within-label_lengths-{dtype}", dtype, p3, _ints([[0, -1], [1, -1]]),
            tags=("invalid",), extra={"label_lengths": _ints([2, 1])},
            invalid="the first label_lengths[n] entries must be labels, not -1 padding",
        )
        yield _case(
            f"singular-infeasible-{dtype}", dtype, p3, _ints([[1, 1], [0, -1]]), tags=("singular",),
            extra={"pred_lengths": _ints([2, 3])},
            note="sample 0's label [1, 1] needs 3 frames and has 2: no alignment exists, p = 0, "
            "the documented -log p is +inf (its VJP is undefined: nan); sample 1 is finite",
        )
        yield _case(
            f"invalid-pred_lengths-{dtype}", dtype, p3, _ints([[0], [1]]), tags=("invalid",),
            extra={"pred_lengths": _ints([4, 2])},
            invalid="pred_lengths must be in [0, sequence_length]",
        )
        yield _case(
            f"invalid-label_lengths-{dtype}", dtype, p3, _ints([[0], [1]]), tags=("invalid",),
            extra={"label_lengths": _ints([1, -1])},
            invalid="label_lengths must be in [0, label_sequence_length]",
        )
        yield _case(
            f"invalid-batch-mismatch-{dtype}", dtype, p3, _ints([[0], [1], [0]]), tags=("invalid",),
            invalid="label must have the batch size of pred",
        )
        yield _case(
            f"invalid-sample_weight-{dtype}", dtype, p3, _ints([[0], [1]]), tags=("invalid",),
            extra={"sample_weight": C.uniform(rng, (2, 1), 0.5, 1.0, dtype)},
            invalid="sample_weight must broadcast to the loss's shape (batch_size,)",
        )
    yield from C.subnormal_cases(SPEC.id, _subnormal)
    yield from _layout_crossings(sources)


def _layout_crossings(sources: dict[str, tuple[C.Case, np.ndarray, np.ndarray]]) -> Iterator[C.Case]:
    """The layout options crossed with the regimes whose cases use the other layout: the
    float32 extreme case (layout='TNC') in layout='NTC' and with label_layout='TN', the
    tiny case (layout='NTC') in layout='TNC'; the same values, laid out for the option."""
    for tag, variant in (("extreme", {"layout": "NTC"}), ("extreme", {"label_layout": "TN"}), ("tiny", {"layout": "TNC"})):
        src, pred_ntc, label_nt = sources[f"{tag}-float32"]
        options = {**src.options, **variant}
        inputs = _layouts(pred_ntc, label_nt, options)
        yield C.crossing(tag, src, variant, inputs,
                         f"laid out as layout={options.get('layout', 'NTC')!r}, label_layout={options.get('label_layout', 'NT')!r}")


def _subnormal(dtype: str):
    g = C.SUBNORMAL_GAP[dtype]
    inputs = _layouts(C.in_dtype([[[g, 0.0]], [[0.0, g]]], dtype), _ints([[0], [-1]]), {})
    yield ("confident", inputs, {},
           f"one frame, the label's logit {g:g} above the blank's (and the reverse for the empty "
           f"label): -log p = log(1 + exp(-{g:g})), subnormal, and so are the gradients")


def sample(rng, options: dict) -> dict:
    """Valid random float64 inputs for self-verification (see tests/)."""
    n_batch, n_time, n_class = rng.choice([(2, 2, 3), (1, 3, 4), (2, 3, 2)])
    pred = C.normal(rng, (n_batch, n_time, n_class), 1.5, "float64")
    frames = [rng.randint(1, n_time) for _ in range(n_batch)] if rng.random() < 0.5 else [n_time] * n_batch
    seqs = _labels(rng, n_batch, n_time, n_class, frames)
    width = max(len(s) for s in seqs) + rng.randint(0, 1)
    out = _layouts(pred, _pad(seqs, width), options)
    if frames != [n_time] * n_batch or rng.random() < 0.5:
        out["pred_lengths"] = _ints(frames)
    if rng.random() < 0.5:
        out["label_lengths"] = _ints([len(s) for s in seqs])
    if rng.random() < 0.7:
        out["sample_weight"] = C.uniform(rng, (n_batch,), 0.1, 2.0, "float64")
    return out

