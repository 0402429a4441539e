"""The report's plots: matplotlib (Agg, object API, a fixed style) rendered to base64
PNG without software metadata, so the same results give the same bytes."""

from __future__ import annotations

import base64
import io
import math

from .model import BIN_LABELS, DPI, Summary, _tag_key, _worse, fmt_ulps, short


class _Plots:
    """matplotlib (Agg, object API, default style) to base64 PNG, byte-reproducible."""

    def __init__(self) -> None:
        try:
            import matplotlib
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.collections import PolyCollection
            from matplotlib.figure import Figure
            from matplotlib.patches import Patch
        except ImportError:
            self.available = False
            return
        self.available = True
        self.matplotlib, self.Figure, self.Canvas, self.Patch = matplotlib, Figure, FigureCanvasAgg, Patch
        self.PolyCollection = PolyCollection
        rc = {k: v for k, v in matplotlib.rcParamsDefault.items() if k not in ("backend", "backend_fallback")}
        rc.update({"svg.hashsalt": "lossconf", "font.size": 8, "axes.titlesize": 9, "figure.dpi": DPI})
        self.rc = rc

    def figure(self, w: float, h: float):
        fig = self.Figure(figsize=(w, h), dpi=DPI)
        self.Canvas(fig)
        return fig

    def png(self, fig) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        return base64.b64encode(buf.getvalue()).decode("ascii")

    def histograms(self, s: Summary) -> str:
        """ULP-error histograms, one row per loss and one panel per dtype: the share of the
        value checks (blue) and gradient checks (orange) whose worst element fell in each
        bin, with the worst error at the right. One figure, so it stays fast."""
        losses = [loss for loss in s.losses() if any(sum(s.hist.get((loss, d, g), ())) for d in s.dtypes for g in (False, True))]
        dts = s.dtypes
        n = len(losses)
        left = 0.3 + 0.075 * max(len(short(x)) for x in losses)
        width, height = left + 3.6 * len(dts), 1.0 + 0.42 * n
        empty = [0] * len(BIN_LABELS)
        xs = list(range(len(BIN_LABELS)))
        with self.matplotlib.rc_context(self.rc):
            fig = self.figure(width, height)
            axes = fig.subplots(1, len(dts), squeeze=False, sharey=True)[0]
            for ax, d in zip(axes, dts):
                boxes: dict[bool, list] = {False: [], True: []}
                for i, loss in enumerate(losses):
                    y0 = n - 1 - i
                    for grad, dx in ((False, -0.4), (True, 0.0)):
                        h = s.hist.get((loss, d, grad), empty)
                        tot = sum(h)
                        for x, c in zip(xs, h):
                            if c:
                                top = y0 + 0.85 * c / tot
                                boxes[grad].append([(x + dx, y0), (x + dx + 0.4, y0), (x + dx + 0.4, top), (x + dx, top)])
                    pair = s.value_grad[loss].get(d)
                    worst = _worse(pair[0].worst, pair[1].worst) if pair else None
                    label = fmt_ulps(worst) if worst is not None else "-"
                    ax.text(len(BIN_LABELS) - 0.3, y0 + 0.35, label, ha="left", va="center", fontsize=6.5)
                for grad, colour in ((False, "#3b75af"), (True, "#ef8636")):
                    ax.add_collection(self.PolyCollection(boxes[grad], facecolors=colour, linewidths=0))
                ax.hlines([y - 0.05 for y in range(n + 1)], -0.6, len(BIN_LABELS) + 1.4, colors="#dddddd", lw=0.5)
                ax.axvline(3.5, color="#555555", lw=0.8, ls="--")
                ax.set_xlim(-0.6, len(BIN_LABELS) + 1.4)
                ax.set_ylim(-0.1, n)
                ax.set_xticks(xs)
                ax.set_xticklabels(BIN_LABELS, fontsize=6.5, rotation=45)
                ax.set_title(f"{d} (error in ULPs; right: worst)", fontsize=8)
                ax.tick_params(axis="y", length=0)
            axes[0].set_yticks([n - 1 - i + 0.4 for i in range(n)])
            axes[0].set_yticklabels([short(x) for x in losses], fontsize=7)
            fig.legend(
                handles=[self.Patch(color="#3b75af", label="value"), self.Patch(color="#ef8636", label="gradient")],
                loc="upper left", fontsize=7, frameon=False, ncol=2,
            )
            fig.subplots_adjust(left=left / width, right=0.99, bottom=0.55 / height, top=1 - 0.35 / height, wspace=0.06)
            return self.png(fig)

    def regimes(self, s: Summary) -> str:
        """Worst error (log scale) by value regime, one bar per dtype."""
        tags = sorted(s.regime, key=_tag_key)
        dts = s.dtypes
        colours = {"float16": "#ef8636", "float32": "#3b75af", "float64": "#519e3e"}
        with self.matplotlib.rc_context(self.rc):
            fig = self.figure(max(4.0, 0.9 * len(tags) + 1.2), 2.6)
            ax = fig.subplots()
            width = 0.8 / max(1, len(dts))
            finite = [c.worst for t in tags for c in s.regime[t].values() if c.worst is not None and math.isfinite(c.worst)]
            # the bar for inf (and the axis) above the largest finite error; capped so that a
            # huge finite error (1e308 ULP) cannot push the axis limits or its log ticks to inf
            top = min(max([*finite, 10.0]) * 10, 1e100)
            for j, d in enumerate(dts):
                xs, ys, inf_x = [], [], []
                for i, t in enumerate(tags):
                    c = s.regime[t].get(d)
                    if c is None or c.worst is None:
                        continue
                    y = c.worst
                    if not math.isfinite(y):
                        y = top
                        inf_x.append(i + (j - (len(dts) - 1) / 2) * width)
                    xs.append(i + (j - (len(dts) - 1) / 2) * width)
                    ys.append(min(max(y, 0.01), top))  # (huge finite errors drawn at the cap)
                ax.bar(xs, ys, width=width, color=colours.get(d, "#888888"), label=d)
                for x in inf_x:
                    ax.text(x, top, "∞", ha="center", va="bottom", fontsize=7)
            ax.set_yscale("log")
            ax.set_ylim(0.01, top * 3)
            ax.axhline(4.0, color="#555555", lw=0.8, ls="--")
            ax.set_xticks(range(len(tags)))
            ax.set_xticklabels(tags)
            ax.set_ylabel("worst error (ULP)")
            ax.set_title("worst value/gradient error by value regime (dashed: default 4 ULP)")
            ax.legend(fontsize=7, frameon=False)
            fig.subplots_adjust(left=0.1, right=0.99, bottom=0.12, top=0.88)
            return self.png(fig)

