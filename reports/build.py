"""Make a report: load results, analyse each host, draw the figures, render and write the files.

`make_report` is the one entry point (the CLI and `make demo` call it). Files are written
atomically (a temporary file renamed into place), so an interrupted report never leaves a
half-written report.html behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from reports.errors import RenderError, ReportError
from reports.i18n import LANGS
from reports.load import Results, load
from reports.table import HostAnalysis, analyse

FORMATS = ("html", "md")


@dataclass
class ReportOutput:
    """What a report run produced: the analyses (for the terminal summary) and the files written."""

    results: Results
    analyses: list[HostAnalysis]
    written: list[Path]
    lang: str


def host_slug(host: str) -> str:
    """A file-name-safe, collision-free name for a host (names from results are untrusted)."""
    safe = re.sub(r"[^A-Za-z0-9.-]+", "-", host).strip(".-")[:40] or "host"
    digest = hashlib.sha256(host.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe}-{digest}"


def parse_formats(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """'html,md' -> ('html', 'md'); unknown formats are an error that names them."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = tuple(dict.fromkeys(i.strip().lower() for i in items if i.strip()))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise ReportError(f"unknown report format: {', '.join(bad) or '(none)'} (choose from {', '.join(FORMATS)})")
    return out


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder, then rename it."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise RenderError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise RenderError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _out_dir(out: str | Path | None, results: Results) -> Path:
    path = Path(out) if out is not None else results.runs[0].path
    if path.exists() and not path.is_dir():
        raise RenderError(f"cannot write the report into {path}: it is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"cannot create report directory {path}: {exc.strerror or exc}") from exc
    return path


def make_report(paths: list[str | Path], out: str | Path | None = None, formats=FORMATS, lang: str = "en",
                now: datetime | None = None) -> ReportOutput:
    """Read results directories and write report.html / report.md (and figures/) into `out`."""
    if lang not in LANGS:
        raise ReportError(f"unknown report language: {lang} (choose from {', '.join(LANGS)})")
    fmts = parse_formats(formats)
    results = load(paths)
    analyses = [analyse(results, host, lang) for host in results.hosts()]
    out_dir = _out_dir(out, results)
    # Drawing imports matplotlib; keep it here so loading and analysis stay light.
    from reports import plots, render

    names = sorted({b.name for an in analyses for b in an.backends})
    colours = plots.colours_for(names)
    views = [render.HostView(an, plots.draw_all(an, colours, lang), host_slug(an.host)) for an in analyses]
    written: list[Path] = []
    if "md" in fmts:
        fig_dir = out_dir / "figures"
        try:
            fig_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise RenderError(f"cannot create {fig_dir}: {exc.strerror or exc}") from exc
        for hv in views:
            for fig in hv.figures:
                if fig.png:
                    name = f"{hv.slug}-{fig.key}.png"
                    write_atomic(fig_dir / name, fig.png)
                    hv.figure_files[fig.key] = f"figures/{name}"
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    view = render.ReportView(lang=lang, hosts=views, colours=colours, generated=when,
                             sources=[str(r.path) for r in results.runs], figure_lang=plots.figure_lang(lang))
    for fmt, name, render_as in (("html", "report.html", render.html), ("md", "report.md", render.markdown)):
        if fmt in fmts:
            path = out_dir / name
            write_atomic(path, render_as(view).encode("utf-8"))
            written.append(path)
    return ReportOutput(results=results, analyses=analyses, written=written, lang=lang)
