"""The written report: numbers equal the samples' statistics, names are escaped, both languages."""

from __future__ import annotations

import html
import json
import math
import re
import statistics
from collections import defaultdict

import pytest
import resultgen

from reports.build import host_slug, make_report, parse_formats
from reports.errors import RenderError, ReportError
from reports.plots import is_blank
from reports.render import md_escape

UNITS = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "B": 1.0, "kB": 1e3, "MB": 1e6, "GB": 1e9,
         "TB": 1e12}
PIPE = re.compile(r"(?<!\\)\|")


def md_cells(line: str) -> list[str]:
    """Split a Markdown table row on unescaped pipes and undo md_escape."""
    parts = PIPE.split(line.strip())[1:-1]
    out = []
    for p in parts:
        p = re.sub(r"\\(.)", r"\1", p.strip())
        out.append(html.unescape(p))
    return out


def parse_quantity(text: str) -> float:
    """'1.23 ms' -> 0.00123; '1,850 instances' -> 1850.0; '4.11 kB' -> 4110."""
    number, _, unit = text.strip().partition(" ")
    return float(number.replace(",", "")) * UNITS.get(unit.strip(), 1.0)


def expected_stats(run_dir) -> dict[tuple[str, str], tuple[int, float, float]]:
    """(backend, metric) -> (n, median, p95), recomputed from samples.csv with the stdlib only."""
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in resultgen.read_samples(run_dir):
        meta = json.loads(row["metadata"] or "{}")
        values = groups[(row["backend"], row["metric"])]
        try:
            value = float(row["value"])
        except ValueError:
            continue
        if math.isfinite(value) and not meta.get("error"):
            values.append(value)
    out = {}
    for key, values in groups.items():
        if not values:
            out[key] = (0, None, None)  # the report must print no number here
            continue
        p95 = statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]
        out[key] = (len(values), statistics.median(values), p95)
    return out


def md_table(md: str, heading: str) -> tuple[list[str], list[list[str]]]:
    """(header cells, body rows) of the first table under the Markdown heading that starts with ``heading``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows = []
    for line in lines[start + 4:]:
        if not line.startswith("|"):
            break
        rows.append(md_cells(line))
    return md_cells(lines[start + 2]), rows


def values_table(md: str) -> list[list[str]]:
    """The rows of the first 'All measured values' table of a Markdown report."""
    return md_table(md, "### All measured values")[1]


@pytest.fixture
def report_of(tmp_path):
    def build(paths, **kwargs):
        kwargs.setdefault("out", tmp_path / "out")
        return make_report(paths, **kwargs)

    return build


def test_markdown_numbers_equal_the_statistics_of_the_samples(make_run, report_of):
    run = make_run(reps=9, nonfinite=True, zero_ok_row="perf")
    out = report_of([run])
    md = (out.written[1]).read_text()
    expected = expected_stats(run)
    rows = values_table(md)
    assert len(rows) == len(expected)
    for backend, _workload, metric, n, median, p95, _ci, _dropped in rows:
        label = backend.split(" (")[0]
        en, emed, ep95 = expected[(label, metric)]
        assert int(n) == en, (backend, metric)
        if en == 0:
            assert median == p95 == "–", (backend, metric)
            continue
        assert parse_quantity(median) == pytest.approx(emed, rel=6e-4), (backend, metric, median)
        assert parse_quantity(p95) == pytest.approx(ep95, rel=6e-4), (backend, metric, p95)
    # the headline p50 in the textbook table agrees too (3 significant digits)
    lines = md.splitlines()
    startup = next(line for line in lines if line.startswith("| **Startup**"))
    for backend in ("native", "container", "podman", "vm-micro"):
        m = re.search(rf"\*\*{re.escape(backend)}[^*]*\*\*: p50 ([0-9.,]+ [a-zµ]+)", startup)
        assert m, backend
        assert parse_quantity(m.group(1)) == pytest.approx(expected[(backend, "startup.ready")][1], rel=5e-3)


def test_markdown_tables_keep_their_shape_with_pipes_in_names(make_run, report_of):
    out = report_of([make_run(evil=True)])
    md = out.written[1].read_text()
    table_lines = [line for line in md.splitlines() if line.startswith("|")]
    blocks: list[list[str]] = []
    for line in md.splitlines():
        if line.startswith("|"):
            if blocks and blocks[-1] is not None and blocks[-1][-1] is not None:
                blocks[-1].append(line)
            else:
                blocks.append([line])
        else:
            blocks.append(None) if blocks and blocks[-1] is not None else None
    for block in [b for b in blocks if b]:
        widths = {len(PIPE.findall(line)) for line in block}
        assert len(widths) == 1, block[:3]
    assert "\\|pwn" in md and "|pwn" not in md.replace("\\|pwn", "")
    assert "<script>" not in md and "<img" not in md
    assert table_lines


def test_html_escapes_every_name_and_is_self_contained(make_run, report_of):
    out = report_of([make_run(evil=True, nonfinite=True)], formats="html")
    text = out.written[0].read_text()
    assert "<script" not in text.lower()
    assert "<img src=x" not in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;|pwn" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "lab1&lt;script&gt;alert(3)&lt;/script&gt;" in text
    assert "evil&lt;script&gt;alert(2)&lt;/script&gt;:latest" in text
    srcs = re.findall(r'src="([^"]*)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="https?:', text)
    assert "Content-Security-Policy" in text


def test_figures_are_drawn_and_not_blank(make_run, report_of, tmp_path):
    out = report_of([make_run()])
    figs = sorted((tmp_path / "out" / "figures").glob("*.png"))
    assert {f.name.split("-")[-1] for f in figs} == {"startup.png", "phases.png", "density.png", "disk.png",
                                                     "performance.png", "isolation.png"}
    for f in figs:
        assert not is_blank(f.read_bytes()), f.name
    md = out.written[1].read_text()
    for f in figs:
        assert f"](figures/{f.name})" in md


def test_missing_figures_say_what_is_missing(make_run, report_of):
    out = report_of([make_run(only_rows=("startup",))], formats="html")
    text = out.written[0].read_text()
    assert "No data for this figure: density.mem_used." in text
    assert "No data for this figure: isolation.*." in text
    assert text.count("data:image/png;base64,") == 2  # startup and phases only


def test_chinese_report_keeps_the_textbook_wording(make_run, report_of):
    out = report_of([make_run()], lang="zh")
    md = out.written[1].read_text()
    html_text = out.written[0].read_text()
    for word in ("秒级", "分钟级", "一般为 MB", "一般为 GB", "接近原生", "弱于", "单机支持上千个容器", "一般几十个",
                 "安全隔离", "完全隔离", "基本成立，但有前提", "注意事项"):
        assert word in md, word
        assert word in html_text, word
    assert 'lang="zh-CN"' in html_text


def test_english_report_shows_the_original_wording_beside_the_translation(make_run, report_of):
    md = report_of([make_run()]).written[1].read_text()
    assert "seconds (秒级)" in md and "usually a few dozen (一般几十个)" in md


def test_two_hosts_side_by_side_never_in_one_ratio(make_run, report_of):
    a = make_run("a", hostname="lab1", seed=1)
    b = make_run("b", hostname="lab2", scale=2.0, seed=5, accel="kvm")
    out = report_of([a, b])
    md = out.written[1].read_text()
    assert "| lab1 | lab2 |" in md.splitlines()[8] or "| lab1 | lab2 |" in md
    assert md.count("## Host lab1") == 1 and md.count("## Host lab2") == 1
    assert "Runs from 2 hosts are shown side by side" in md
    sections = md.split("## Host ")
    lab1, lab2 = sections[1], sections[2]
    e1, e2 = expected_stats(a), expected_stats(b)
    m1 = re.search(r"\*\*container\*\*: p50 ([0-9.]+ [a-z]+)", lab1).group(1)
    m2 = re.search(r"\*\*container\*\*: p50 ([0-9.]+ [a-z]+)", lab2).group(1)
    assert parse_quantity(m1) == pytest.approx(e1[("container", "startup.ready")][1], rel=5e-3)
    assert parse_quantity(m2) == pytest.approx(e2[("container", "startup.ready")][1], rel=5e-3)
    assert "vm-micro (kvm)" in lab2 and "vm-micro (tcg)" not in lab2
    assert "vm-micro (tcg)" in lab1 and "vm-micro (kvm)" not in lab1
    assert len(out.analyses) == 2


def test_incomplete_and_problem_runs_are_flagged(make_run, report_of):
    out = report_of([make_run(incomplete=True, nonfinite=True)])
    md = out.written[1].read_text()
    assert "INCOMPLETE: the run was interrupted or crashed" in md
    assert "no finite value (empty, NaN or Inf)" in md


def test_default_output_is_the_first_results_dir(make_run):
    run = make_run()
    out = make_report([run], formats="md")
    assert out.written == [run / "report.md"]
    assert (run / "figures").is_dir()
    assert not (run / "report.html").exists()


def test_output_into_a_file_is_refused(make_run, tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    with pytest.raises(RenderError, match="it is a file"):
        make_report([make_run()], out=target)


def test_output_under_a_file_is_refused(make_run, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(RenderError, match="cannot create report directory"):
        make_report([make_run()], out=tmp_path / "afile" / "sub")


def test_a_failed_write_leaves_no_partial_file(make_run, tmp_path, monkeypatch):
    import os

    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("report.md"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    out_dir = tmp_path / "out"
    with pytest.raises(RenderError, match="cannot write .*report.md: No space left on device"):
        make_report([make_run()], out=out_dir)
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ["figures", "report.html"]  # complete files only, no temporary leftovers
    assert not any(p.name.startswith(".") for p in (out_dir / "figures").iterdir())


def test_formats_and_languages_are_checked():
    assert parse_formats("html, md,html") == ("html", "md")
    with pytest.raises(ReportError, match="unknown report format: pdf"):
        parse_formats("html,pdf")
    with pytest.raises(ReportError, match="unknown report language"):
        make_report(["/nonexistent"], lang="fr")


def test_md_escape():
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("<script>") == "&lt;script&gt;"
    assert md_escape("x\ny") == "x y"
    assert md_escape("*_`[]") == "\\*\\_\\`\\[\\]"


def test_host_slugs_are_safe_and_distinct():
    a, b = host_slug("../../etc/passwd"), host_slug("..-..-etc-passwd")
    assert "/" not in a and not a.startswith(".") and a != b
    assert host_slug("<script>") .startswith("script-")


# ----------------------------------------------------------------- hostile and broken input


def test_an_empty_run_still_renders_and_says_so(make_run, report_of):
    path = make_run()
    header = resultgen.sample_lines(path)[0]
    (path / "samples.csv").write_text(header + "\n")
    out = report_of([path])
    md = out.written[1].read_text()
    assert md.count("**not measured**") == 10  # the summary and the host table
    assert "No data for this figure" in out.written[0].read_text()
    assert not re.search(r"p50 \d", md)


def test_performance_without_native_is_not_measured(make_run, report_of):
    out = report_of([make_run(backends=("container", "vm-micro"), only_rows=("perf",))])
    row = next(r for r in out.analyses[0].rows if r.key == "performance")
    assert row.verdict == "unmeasured"
    assert "no native baseline" in row.explanation[0]
    assert "no successful native sample" in " ".join(out.analyses[0].problems)


def test_extra_columns_are_ignored(make_run, report_of):
    path = make_run(only_rows=("startup",))
    lines = resultgen.sample_lines(path)
    lines = [lines[0] + ",extra"] + [line + ",zzz" for line in lines[1:]]
    resultgen.write_sample_lines(path, lines)
    out = report_of([path], formats="md")
    assert next(r for r in out.analyses[0].rows if r.key == "startup").verdict == "nuance"


def test_undecodable_samples_are_refused(make_run):
    path = make_run(only_rows=("startup",))
    with open(path / "samples.csv", "ab") as fh:
        fh.write(b"x,container,boot,startup.ready,\xff\xfe,s,0,{},t\n")
    with pytest.raises(ReportError, match="cannot read .*samples.csv"):
        make_report([path], out=path / "o")


def test_environment_with_wrong_types_still_renders(make_run, report_of):
    path = make_run(only_rows=("startup",))
    env = json.loads((path / "environment.json").read_text())
    env.update({"host": ["not", "a", "dict"], "versions": "qemu 7.2", "images": 5, "accelerator": None,
                "argv": None})
    (path / "environment.json").write_text(json.dumps(env))
    out = report_of([path])
    md = out.written[1].read_text()
    assert "unknown host (run" in md  # no hostname: kept alone, said plainly
    assert "| kernel | unknown |" in md


def test_mathtext_and_huge_names_are_drawn_as_plain_text(make_run, report_of):
    path = make_run(only_rows=("startup", "isolation"))
    lines = resultgen.sample_lines(path)
    weird = "$\\frac{1}{0}$_^" + "x" * 5000
    lines += [line.replace(",podman,", f",{weird},") for line in lines[1:] if ",podman," in line]
    resultgen.write_sample_lines(path, lines)
    out = report_of([path])
    assert out.written[0].read_text().count("data:image/png;base64,") == 3


def test_hostile_names_do_not_become_terminal_markup(make_run, tmp_path):
    from click.testing import CliRunner

    from reports.cli import report

    path = make_run(only_rows=("startup",))
    lines = resultgen.sample_lines(path)
    lines += [line.replace(",podman,", ",[bold red]boom[/],") for line in lines[1:] if ",podman," in line]
    resultgen.write_sample_lines(path, lines)
    r = CliRunner().invoke(report, [str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "[bold red]boom[/]" in r.output


def test_markdown_ratios_equal_the_ratio_of_medians(make_run, report_of):
    run = make_run(reps=7)
    md = report_of([run], formats="md").written[0].read_text()
    expected = expected_stats(run)
    header, rows = md_table(md, "### Performance relative to native")
    better = {w: b for w, (_, b, _, _) in resultgen.PERF.items()}
    assert {r[0] for r in rows} == set(better)
    for row in rows:
        workload = row[0]
        native = expected[("native", f"perf.{workload}")][1]
        for label, text in zip(header[1:], row[1:], strict=True):
            mine = expected[(label.split(" (")[0], f"perf.{workload}")][1]
            want = mine / native if better[workload] == "higher" else native / mine
            got = float(text.split("×")[0])
            assert got == pytest.approx(want, rel=5e-3), (workload, label, text)
