"""Render the report as one self-contained HTML file and as Markdown, with jinja2.

HTML: autoescape is on for every expression, so any name taken from results is shown
as text, never as markup; figures are embedded as base64 PNG, with no script and no
external resource, so the file can be mailed. Markdown: every expression goes through
`md_escape` (pipes, markup and emphasis characters), the Markdown equivalent of autoescape;
only the template's own `Markup` fragments pass unchanged.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

import jinja2
from markupsafe import Markup

from reports import i18n
from reports.anchors import ANCHORS
from reports.plots import Figure
from reports.stats import Summary
from reports.table import HostAnalysis
from reports.units import fmt_ratio, fmt_value

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_escape(value: object) -> str:
    """Escape text for Markdown: pipes and emphasis characters get a backslash, markup becomes entities."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return str(value)
    text = str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return " ".join(text.split())  # a newline would end a table row


@dataclass
class HostView:
    """One host's analysis with its figures, ready for the templates."""

    analysis: HostAnalysis
    figures: list[Figure]
    slug: str
    figure_files: dict[str, str] = field(default_factory=dict)  # key -> relative path (Markdown)

    def figure_b64(self, fig: Figure) -> str:
        """The figure as a data: URI payload."""
        return base64.b64encode(fig.png or b"").decode("ascii")


@dataclass
class ReportView:
    """Everything the templates need: language, hosts, colours and the generation facts."""

    lang: str
    hosts: list[HostView]
    colours: dict[str, str]
    generated: str
    sources: list[str]
    figure_lang: str


def _summary_cells(s: Summary, unit: str, digits: int = 4) -> dict[str, str]:
    ci = "–"
    if s.ci_low is not None and s.ci_high is not None:
        ci = f"{fmt_value(s.ci_low, unit, digits)} – {fmt_value(s.ci_high, unit, digits)}"
    return {"median": fmt_value(s.median, unit, digits), "p95": fmt_value(s.p95, unit, digits), "ci": ci}


def _perf_table(an: HostAnalysis) -> tuple[list[str], list[str], dict[tuple[str, str], str]]:
    workloads = sorted({p.workload for p in an.perf})
    names = [b.name for b in an.backends if any(p.backend.name == b.name for p in an.perf)]
    cells = {}
    for w in workloads:
        for n in names:
            failure = an.errors.get((n, w.split(".")[0]))
            if failure:
                cells[(w, n)] = f"failed: {failure}"
    for p in an.perf:
        text = fmt_ratio(p.ratio.value)
        if p.ratio.ci_low is not None and p.ratio.ci_high is not None:
            text += f" [{fmt_ratio(p.ratio.ci_low)} – {fmt_ratio(p.ratio.ci_high)}]"
        cells[(p.workload, p.backend.name)] = text
    return workloads, names, cells


def key_numbers(row, limit: int = 6) -> list[tuple[str, str]]:
    """The headline numbers of a row's container and VM backends, for the hosts-side-by-side table."""
    out = [(c.backend.label, c.headline) for c in row.cells
           if c.headline and not c.missing and c.backend.kind in ("container", "vm")]
    return out[:limit]


def _environment(loader_pkg: str = "reports") -> dict[str, jinja2.Environment]:
    loader = jinja2.PackageLoader(loader_pkg, "templates")
    html = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)
    md = jinja2.Environment(loader=loader, autoescape=False, finalize=md_escape,
                            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return {"html": html, "md": md}


_ENVS: dict[str, jinja2.Environment] | None = None


def _envs() -> dict[str, jinja2.Environment]:
    global _ENVS
    if _ENVS is None:
        _ENVS = _environment()
    return _ENVS


def _context(view: ReportView) -> dict:
    lang = view.lang

    def t(key: str, **params: object) -> str:
        return i18n.t(lang, key, **params)

    first_rows = view.hosts[0].analysis.rows if view.hosts else []
    return {
        "view": view,
        "lang": lang,
        "t": t,
        "rows_keys": [r.key for r in first_rows],
        "rules": [(r.title, r.rule) for r in first_rows],
        "anchors": ANCHORS,
        "summary_cells": _summary_cells,
        "perf_table": _perf_table,
        "key_numbers": key_numbers,
        "Markup": Markup,
        "orig_claims": i18n.ORIGINAL_CLAIMS,
        "orig_rows": i18n.ORIGINAL_ROW_NAMES,
        "check_label": lambda check: i18n.check_label(lang, check),
    }


def html(view: ReportView) -> str:
    """The report as one self-contained HTML document."""
    return _envs()["html"].get_template("report.html.j2").render(**_context(view))


def markdown(view: ReportView) -> str:
    """The report as Markdown (figures linked from the figures/ folder next to it)."""
    return _envs()["md"].get_template("report.md.j2").render(**_context(view))
