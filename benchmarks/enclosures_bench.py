"""Enclosures for the oracle's proofs: python-flint's arb balls against mpmath's iv
intervals (and mpmath's point arithmetic, the former oracle, for reference), measured on
the oracle's own work: the kernels of its two heaviest losses run over the committed
fixture inputs at the working precision (256 bits).

* softmax cross-entropy: a shifted log-sum-exp per row (log1p of the other terms) and the
  gradient p - onehot, for every valid case of ``softmax_cross_entropy_loss.json``;
* CTC: softmax per frame, the alpha and beta recursions and the occupancies gamma, for
  every valid case of ``ctc_loss.json``.

Also checks rigour on log1p(exp(-720)) and expm1(-1e-30): what each library's interval
functions return.

    python benchmarks/enclosures_bench.py            # prints a Markdown table
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import flint
import mpmath
import numpy as np

from oracle.fixtures import expanded_record

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BITS = 256


class Arb:
    name = "python-flint arb balls"

    def setup(self):
        flint.ctx.prec = BITS

    num = staticmethod(lambda v: flint.arb(v))
    exp = staticmethod(lambda x: x.exp())
    log = staticmethod(lambda x: x.log())
    log1p = staticmethod(lambda x: x.log1p())
    zero = staticmethod(lambda: flint.arb(0))


class Iv:
    name = "mpmath iv intervals"

    def setup(self):
        mpmath.iv.prec = BITS

    num = staticmethod(lambda v: mpmath.iv.mpf(v))
    exp = staticmethod(lambda x: mpmath.iv.exp(x))
    log = staticmethod(lambda x: mpmath.iv.log(x))
    log1p = staticmethod(lambda x: mpmath.iv.log1p(x))
    zero = staticmethod(lambda: mpmath.iv.mpf(0))


class Mp:
    name = "mpmath mpf points (former oracle, no proof)"

    def setup(self):
        mpmath.mp.prec = BITS

    num = staticmethod(lambda v: mpmath.mpf(v))
    exp = staticmethod(mpmath.exp)
    log = staticmethod(mpmath.log)
    log1p = staticmethod(mpmath.log1p)
    zero = staticmethod(lambda: mpmath.mpf(0))


def _cases(name: str) -> list[dict]:
    doc = json.loads((FIXTURES / name).read_text())
    return [expanded_record(c) for c in doc["cases"] if "invalid" not in c]


def _floats(arr: dict) -> np.ndarray:
    return np.array([float(x) for x in arr["data"]], dtype=np.float64).reshape(arr["shape"])


def softmax_rows(B, rows: list[list[float]], targets: list[int]) -> None:
    for row, t in zip(rows, targets):
        xs = [B.num(v) for v in row]
        top = max(range(len(row)), key=lambda j: row[j])
        d = [x - xs[top] for x in xs]
        rest = B.zero()
        for j, v in enumerate(d):
            if j != top:
                rest = rest + B.exp(v)
        log_s = B.log1p(rest)
        _loss = log_s - d[t]
        _grad = [B.exp(v - log_s) - (1 if j == t else 0) for j, v in enumerate(d)]


def ctc_sample(B, frames: list[list[float]], seq: list[int]) -> None:
    n_class = len(frames[0])
    blank = n_class - 1
    y = []
    for row in frames:
        xs = [B.num(v) for v in row]
        top = max(range(n_class), key=lambda j: row[j])
        s = B.zero()
        for x in xs:
            s = s + B.exp(x - xs[top])
        lse = B.log(s) + xs[top]
        y.append([B.exp(x - lse) for x in xs])
    ext = [blank]
    for v in seq:
        ext += [v, blank]
    n_s, t_n = len(ext), len(frames)
    skip = [s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(n_s)]
    zero = B.zero()
    alpha = [[zero] * n_s for _ in range(t_n)]
    alpha[0][0] = y[0][ext[0]]
    if n_s > 1:
        alpha[0][1] = y[0][ext[1]]
    for t in range(1, t_n):
        for s in range(n_s):
            acc = alpha[t - 1][s]
            if s >= 1:
                acc = acc + alpha[t - 1][s - 1]
            if skip[s]:
                acc = acc + alpha[t - 1][s - 2]
            alpha[t][s] = y[t][ext[s]] * acc
    beta = [[zero] * n_s for _ in range(t_n)]
    beta[t_n - 1][n_s - 1] = B.num(1)
    if n_s > 1:
        beta[t_n - 1][n_s - 2] = B.num(1)
    for t in range(t_n - 2, -1, -1):
        for s in range(n_s):
            acc = y[t + 1][ext[s]] * beta[t + 1][s]
            if s + 1 < n_s:
                acc = acc + y[t + 1][ext[s + 1]] * beta[t + 1][s + 1]
            if s + 2 < n_s and skip[s + 2]:
                acc = acc + y[t + 1][ext[s + 2]] * beta[t + 1][s + 2]
            beta[t][s] = acc
    p = alpha[t_n - 1][n_s - 1] + (alpha[t_n - 1][n_s - 2] if n_s > 1 else zero)
    for t in range(t_n):
        for s in range(n_s):
            _g = alpha[t][s] * beta[t][s] / p


def softmax_work() -> list:
    rows, targets = [], []
    for c in _cases("softmax_cross_entropy_loss.json"):
        if c["options"]["sparse_label"] and not c["options"]["from_logits"] and c["options"]["axis"] in (-1, 1):
            pred = _floats(c["inputs"]["pred"])
            if pred.ndim != 2 or not np.isfinite(pred).all():
                continue
            label = _floats(c["inputs"]["label"]).astype(int)
            rows += pred.tolist()
            targets += label.tolist()
    return [(rows, targets)]


def ctc_work() -> list:
    out = []
    for c in _cases("ctc_loss.json"):
        if c["options"]["layout"] != "NTC" or c["options"]["label_layout"] != "NT" or len(c["inputs"]) != 2:
            continue
        pred = _floats(c["inputs"]["pred"])
        label = np.array(c["inputs"]["label"]["data"]).reshape(c["inputs"]["label"]["shape"])
        for n in range(pred.shape[0]):
            seq = [int(v) for v in label[n] if v >= 0] if -1 not in label[n] else [int(v) for v in label[n][: list(label[n]).index(-1)]]
            if len(seq) + sum(a == b for a, b in zip(seq, seq[1:])) <= pred.shape[1]:
                out.append((pred[n].tolist(), seq))
    return out


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    sm, ctc = softmax_work(), ctc_work()
    print(f"inputs: {len(sm[0][0])} softmax rows, {len(ctc)} CTC samples, {BITS} bits\n")
    print("| enclosures | softmax CE (value + gradient) | CTC (forward-backward) |")
    print("| --- | --- | --- |")
    for B in (Arb(), Iv(), Mp()):
        B.setup()
        a = timed(lambda: [softmax_rows(B, r, t) for r, t in sm])
        b = timed(lambda: [ctc_sample(B, f, s) for f, s in ctc], repeat=3)
        print(f"| {B.name} | {a * 1000:.0f} ms | {b * 1000:.0f} ms |")
    print()
    flint.ctx.prec = 128
    mpmath.iv.prec = 128
    print("rigour at 128 bits:")
    print("  arb  log1p(exp(-720)) =", flint.arb(-720).exp().log1p())
    print("  iv   log1p(exp(-720)) =", mpmath.iv.log1p(mpmath.iv.exp(-720)))
    print("  arb  expm1(-1e-30)     =", flint.arb("-1e-30").expm1())
    print("  iv   expm1(-1e-30)     =", mpmath.iv.expm1(mpmath.iv.mpf("-1e-30")))
    print("  iv   log(1 + exp(-720)) (no log1p) =", mpmath.iv.log(1 + mpmath.iv.exp(-720)))


if __name__ == "__main__":
    main()
