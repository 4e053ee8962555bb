"""The report's figures, drawn with matplotlib's Agg backend and returned as PNG bytes.

One colour per backend throughout (`colours`), every axis labelled with its unit, and
names from results drawn as plain text (mathtext off), never interpreted.
A figure without data is not drawn: the caller says which data was missing.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

from reports import i18n  # noqa: E402
from reports.table import HostAnalysis  # noqa: E402
from reports.units import fmt_bytes, fmt_seconds  # noqa: E402

KNOWN_COLOURS = {
    "native": "#6b7280",
    "container": "#2563eb",
    "runc": "#7c3aed",
    "podman": "#0891b2",
    "vm-micro": "#ea580c",
    "vm-full": "#dc2626",
    "qemu-direct": "#a16207",
}
EXTRA_COLOURS = ("#16a34a", "#db2777", "#4d7c0f", "#9333ea", "#0f766e", "#b45309", "#be123c", "#1e40af")
PHASE_COLOURS = {
    "engine": "#bfdbfe", "create": "#60a5fa", "start": "#2563eb", "exec": "#1e3a8a",
    "vmm": "#fed7aa", "firmware": "#fb923c", "kernel": "#ea580c", "init": "#9a3412",
}
CJK_FONTS = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
             "Droid Sans Fallback", "AR PL UMing CN")
# A CJK font without a bold face is fine: do not log each fallback to regular weight.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
GREEN, RED, GREY = "#16a34a", "#dc2626", "#e5e7eb"
DPI = 120


@dataclass
class Figure:
    """A rendered figure: its key, caption, and PNG bytes (or why it was not drawn)."""

    key: str
    caption: str
    png: bytes | None
    missing: str | None = None


def colours_for(names: list[str]) -> dict[str, str]:
    """A stable colour per backend name: known backends fixed, others in order of their names."""
    out = {n: KNOWN_COLOURS[n] for n in names if n in KNOWN_COLOURS}
    extra = sorted(n for n in set(names) if n not in KNOWN_COLOURS)
    for i, name in enumerate(extra):
        out[name] = EXTRA_COLOURS[i % len(EXTRA_COLOURS)]
    return out


def cjk_font() -> str | None:
    """The name of an installed font that can draw Chinese, or None."""
    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in CJK_FONTS if n in names), None)


def figure_lang(lang: str) -> str:
    """The language figures can be drawn in: Chinese needs a CJK font, else English."""
    return "zh" if lang == "zh" and cjk_font() else "en"


def _style(lang: str) -> dict:
    families = ["DejaVu Sans"]
    cjk = cjk_font() if lang == "zh" else None
    if cjk:
        families = ["DejaVu Sans", cjk]
    return {
        # A list of families turns on matplotlib's per-glyph fallback (DejaVu for symbols, CJK for Chinese).
        "font.family": families,
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#e5e7eb",
        "grid.linewidth": 0.8,
        "axes.axisbelow": True,
        "axes.edgecolor": "#9ca3af",
        "xtick.color": "#374151",
        "ytick.color": "#374151",
        "legend.frameon": False,
        "legend.fontsize": 8,
        "text.parse_math": False,
        "axes.unicode_minus": False,
        "svg.fonttype": "none",
    }


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _colour_ticklabels(ax, labels, colours_by_label: dict[str, str]) -> None:
    for tick in ax.get_yticklabels():
        colour = colours_by_label.get(tick.get_text())
        if colour:
            tick.set_color(colour)
            tick.set_fontweight("bold")


# ----------------------------------------------------------------- the figures


def startup(an: HostAnalysis, colours: dict[str, str], lang: str):
    """ECDF of request -> ready per backend, log time axis, the claim's 1 s and 1 min marked."""
    data = {n: sorted(v) for n, v in an.startup.items() if v}
    if not data:
        return None
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    lo = min(v[0] for v in data.values())
    hi = max(v[-1] for v in data.values())
    for name, values in data.items():
        b = an.backend(name)
        y = np.concatenate([[0.0], np.arange(1, len(values) + 1) / len(values)])
        ax.step([values[0], *values], y, where="post", color=colours[name], lw=2, label=_short(b.label))
        med = float(np.median(values))
        ax.plot([med], [0.5], "o", color=colours[name], ms=5, zorder=5)
    ax.set_xscale("log")
    left, right = lo / 2, max(hi * 2, 90)
    ax.set_xlim(left, right)
    ax.axvspan(60, right, color="#fee2e2", alpha=0.6, lw=0)
    for x, text in ((1.0, "1 s"), (60.0, "1 min")):
        ax.axvline(x, color="#9ca3af", ls="--", lw=1)
        ax.text(x, 1.02, text, ha="center", va="bottom", fontsize=8, color="#6b7280",
                transform=ax.get_xaxis_transform())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_seconds(v, 2)))
    ax.set_ylim(0, 1.0)
    ax.set_xlabel(i18n.t(lang, "ax.startup.x"))
    ax.set_ylabel(i18n.t(lang, "ax.startup.y"))
    ax.legend(loc="lower right")
    return fig


def phases(an: HostAnalysis, colours: dict[str, str], lang: str):
    """Stacked bars of median phase durations: containers and VMs in panels with their own scale."""
    groups = [[n for n in an.phases if an.backend(n).kind != "vm"], [n for n in an.phases if an.backend(n).kind == "vm"]]
    groups = [g for g in groups if g]
    if not groups:
        return None
    heights = [max(1.2, 0.55 * len(g) + 0.6) for g in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(7.2, sum(heights) + 0.4),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, names in zip(axes[:, 0], groups, strict=True):
        labels = [_short(an.backend(n).label) for n in names]
        seen: list[str] = []
        right = 0.0
        for i, name in enumerate(names):
            left = 0.0
            for ph, value in an.phases[name].items():
                ax.barh(i, value, left=left, color=PHASE_COLOURS.get(ph, "#d1d5db"), edgecolor="white",
                        linewidth=0.6, height=0.6, label=ph if ph not in seen else None)
                if ph not in seen:
                    seen.append(ph)
                left += value
            total = an.startup.get(name)
            if total:
                med = float(np.median(total))
                ax.plot([med], [i], marker="|", ms=18, mew=2, color="#111827")
                ax.text(med, i, f"  p50 {fmt_seconds(med)}", fontsize=7, color="#111827", ha="left", va="center")
                right = max(right, med)
            right = max(right, left)
        ax.set_yticks(range(len(names)), labels)
        _colour_ticklabels(ax, labels, {_short(an.backend(n).label): colours[n] for n in names})
        ax.invert_yaxis()
        ax.set_xlabel(i18n.t(lang, "ax.phases.x"))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_seconds(v, 2)))
        ax.set_xlim(0, right * 1.18 if right else 1)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=len(seen), handlelength=1.2)
        ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig


def density(an: HostAnalysis, colours: dict[str, str], lang: str):
    """Host memory used against instances running, per backend, with where and why each run stopped.

    The limits (the suite's memory budget, the host's memory) are drawn as lines when they
    are on the scale of the data, and named in a note when they are far above it.
    """
    runs = [r for r in an.density if r.curve]
    groups = [[r for r in runs if r.backend.kind != "vm"], [r for r in runs if r.backend.kind == "vm"]]
    groups = [g for g in groups if g]
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(7.2, 3.5), squeeze=False)
    for ax, group in zip(axes[0], groups, strict=True):
        values = [p[1] for r in group for p in r.curve]
        data_max, data_min = max(max(values), 1.0), min(min(values), 0.0)
        scale, unit = (1e9, "GB") if data_max >= 2e9 else (1e6, "MB")
        top = data_max
        for r in group:
            c = colours[r.backend.name]
            xs = [p[0] for p in r.curve]
            ys = [p[1] / scale for p in r.curve]
            ax.plot(xs, ys, "-o", ms=3, lw=2, color=c, label=_short(r.backend.label))
            if r.count is not None:
                ax.axvline(r.count, color=c, ls=":", lw=1.2)
                ax.text(r.count, 0.97, _short(i18n.t(lang, "label.stopped", why=r.stopped_by or "?"), 38),
                        rotation=90, ha="right", va="top", fontsize=6.5, color=c,
                        transform=ax.get_xaxis_transform(),
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1})
        budgets = [r.budget for r in group if r.budget]
        limits = [(min(budgets), i18n.t(lang, "legend.budget"))] if budgets else []
        if an.host_memory:
            limits.append((an.host_memory, i18n.t(lang, "legend.host_mem")))
        notes = []
        for value, name in limits:
            if value <= data_max * 3:
                ax.axhline(value / scale, color=RED, ls="--", lw=1.2)
                ax.text(0.01, value / scale, f" {name} {fmt_bytes(value)}", color=RED, fontsize=7, va="bottom",
                        transform=ax.get_yaxis_transform())
                top = max(top, value)
            else:
                notes.append(i18n.t(lang, "label.offscale", what=name, v=fmt_bytes(value)))
        if notes:
            ax.text(0.02, 0.97, "\n".join(notes), transform=ax.transAxes, fontsize=7, color=RED, va="top")
        ax.set_ylim(data_min / scale * 1.1, top / scale * 1.18)
        ax.set_xlim(left=0)
        ax.set_xlabel(i18n.t(lang, "ax.density.x"))
        ax.set_ylabel(i18n.t(lang, "ax.density.y", unit=unit))
        ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def disk(an: HostAnalysis, colours: dict[str, str], lang: str):
    """Bars of shared bytes and per-instance bytes per backend (log scale), MB and GB marked."""
    names = [n for n, (s, i) in an.disk.items() if s or i]
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    x = np.arange(len(names))
    width = 0.38
    top = 1.0
    for j, name in enumerate(names):
        shared, inst = an.disk[name]
        c = colours[name]
        for offset, value, hatch, alpha in ((-width / 2, shared, None, 1.0), (width / 2, inst, "///", 0.45)):
            if not value or value <= 0:
                continue
            ax.bar(x[j] + offset, value, width, color=c, alpha=alpha, hatch=hatch, edgecolor=c)
            ax.text(x[j] + offset, value * 1.15, fmt_bytes(value, 2), ha="center", va="bottom", fontsize=7)
            top = max(top, value)
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e2 if top > 1e3 else 0.5, top=max(top * 8, 3e9))
    for y, text in ((1e6, "1 MB"), (1e9, "1 GB")):
        ax.axhline(y, color="#9ca3af", ls="--", lw=1)
        ax.text(1.0, y, f" {text}", va="center", fontsize=8, color="#6b7280", transform=ax.get_yaxis_transform())
    labels = [_short(an.backend(n).label, 24).replace(" (", "\n(") for n in names]
    ax.set_xticks(x, labels)
    for tick, name in zip(ax.get_xticklabels(), names, strict=True):
        tick.set_color(colours[name])
        tick.set_fontweight("bold")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_bytes(v, 2)))
    ax.set_ylabel(i18n.t(lang, "ax.disk.y"))
    ax.grid(axis="x", visible=False)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(facecolor="#6b7280", label=i18n.t(lang, "legend.shared")),
                       Patch(facecolor="#6b7280", alpha=0.45, hatch="///", label=i18n.t(lang, "legend.instance"))],
              loc="upper left")
    return fig


def performance(an: HostAnalysis, colours: dict[str, str], lang: str):
    """Performance relative to native per workload and backend, with bootstrap CIs.

    Bars grow from native (1×) on a log axis: left is slower than native, right faster,
    and 2× faster sits as far from 1× as 2× slower.
    """
    points = [p for p in an.perf if p.ratio.value is not None and p.ratio.value > 0]
    if not points:
        return None
    workloads = sorted({p.workload for p in points})
    names = [b.name for b in an.backends if any(p.backend.name == b.name for p in points)]
    n = len(names)
    height = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(7.2, min(9.0, max(2.6, 0.14 * len(workloads) * max(n, 2) + 1.4))))
    values = [p.ratio.value for p in points if p.ratio.value is not None]
    lo = max(0.005, min(0.5, min(values) * 0.7))
    hi = min(200.0, max(2.0, max(values) * 1.4))
    for j, name in enumerate(names):
        b = an.backend(name)
        ys: list[float] = []
        xs: list[float] = []
        errs: list[list[float]] = [[], []]
        for i, w in enumerate(workloads):
            p = next((q for q in points if q.backend.name == name and q.workload == w), None)
            if p is None or p.ratio.value is None:
                continue
            v = p.ratio.value
            ys.append(i - 0.4 + height * (j + 0.5))
            xs.append(v)
            low = p.ratio.ci_low if p.ratio.ci_low else v
            high = p.ratio.ci_high if p.ratio.ci_high else v
            errs[0].append(max(0.0, v - max(low, lo)))
            errs[1].append(max(0.0, min(high, hi) - v))
        widths = [x - 1.0 for x in xs]
        ax.barh(ys, widths, height * 0.9, left=1.0, color=colours[name], label=_short(b.label), zorder=2)
        ax.errorbar(xs, ys, xerr=errs, fmt="none", ecolor="#111827", elinewidth=0.8, capsize=2, zorder=3)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if lo <= t <= hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.axvspan(0.9, 1.0, color="#dcfce7", lw=0, zorder=0)
    ax.axvline(1.0, color="#111827", lw=1.2, zorder=4)
    ax.text(1.0, 1.01, i18n.t(lang, "legend.native"), ha="center", va="bottom", fontsize=8,
            transform=ax.get_xaxis_transform())
    ax.set_yticks(range(len(workloads)), [_short(w, 22) for w in workloads])
    ax.set_ylim(len(workloads) - 0.5, -0.5)
    ax.set_xlabel(i18n.t(lang, "ax.perf.x"))
    ax.grid(axis="y", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(4, n), fontsize=8)
    return fig


def isolation(an: HostAnalysis, colours: dict[str, str], lang: str):
    """The isolation matrix as a heatmap: backends by checks, isolated / not / not measured."""
    names = [b.name for b in an.backends if b.name in an.isolation]
    if not names:
        return None
    checks = list(next(iter(an.isolation.values())).keys())
    for name in names:
        checks += [c for c in an.isolation[name] if c not in checks]
    if not checks:
        return None
    codes = np.full((len(names), len(checks)), 2)
    for i, name in enumerate(names):
        for j, check in enumerate(checks):
            v = an.isolation[name].get(check, (None, ""))[0]
            codes[i, j] = 2 if v is None else int(v)
    fig, ax = plt.subplots(figsize=(7.2, 0.45 * len(names) + 1.6))
    ax.imshow(codes, cmap=ListedColormap([RED, GREEN, GREY]), vmin=0, vmax=2, aspect="auto")
    marks = {0: "✗", 1: "✓", 2: "–"}
    for i in range(len(names)):
        for j in range(len(checks)):
            ax.text(j, i, marks[int(codes[i, j])], ha="center", va="center", fontsize=11,
                    color="white" if codes[i, j] < 2 else "#6b7280", fontweight="bold")
    labels = [_short(an.backend(n).label, 22) for n in names]
    ax.set_yticks(range(len(names)), labels)
    check_labels = [i18n.check_label(lang, c, _short(c, 20)) for c in checks]
    ax.set_xticks(range(len(checks)), check_labels, rotation=25, ha="right")
    _colour_ticklabels(ax, labels, {lab: colours[n] for lab, n in zip(labels, names, strict=True)})
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xticks(np.arange(-0.5, len(checks)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(names)), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    return fig


FIGURES = (
    ("startup", startup, "fig.startup", "startup.ready"),
    ("phases", phases, "fig.phases", "startup.phase.*"),
    ("density", density, "fig.density", "density.mem_used"),
    ("disk", disk, "fig.disk", "disk.shared_bytes / disk.instance_bytes"),
    ("performance", performance, "fig.perf", "perf.* with a native baseline"),
    ("isolation", isolation, "fig.isolation", "isolation.*"),
)


def draw_all(an: HostAnalysis, colours: dict[str, str], lang: str) -> list[Figure]:
    """Every figure of one host, as PNG bytes, or with the reason it could not be drawn."""
    flang = figure_lang(lang)
    out = []
    with plt.rc_context(_style(flang)):
        for key, draw, caption_key, needs in FIGURES:
            caption = i18n.t(lang, caption_key)
            fig = draw(an, colours, flang)
            if fig is None:
                out.append(Figure(key, caption, None, i18n.t(lang, "fig.missing", what=needs)))
            else:
                out.append(Figure(key, caption, _png(fig)))
    return out


def is_blank(png: bytes) -> bool:
    """True if a PNG has (almost) no variation: a figure that drew nothing."""
    img = plt.imread(io.BytesIO(png), format="png")
    return float(np.std(img)) < 1e-3 or math.isnan(float(np.std(img)))
