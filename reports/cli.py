"""`virtlab report RESULTS_DIR...`: write the report and print the textbook table in the terminal."""

from __future__ import annotations

import os

import click

VERDICT_STYLES = {"holds": "bold green", "nuance": "bold yellow", "fails": "bold red", "unmeasured": "dim"}


def print_summary(output, console=None) -> None:
    """Print the five rows with the claims and each host's verdict and evidence, as a rich table."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from reports import i18n

    if console is None:
        console = Console()
        # Piped output (logs, CI) gets a wide table instead of rich's 80-column default.
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console.width = 150
    lang = output.lang
    for an in output.analyses:
        table = Table(title=Text(f"{i18n.t(lang, 'terminal.title')} — {an.host}"), show_lines=True,
                      title_justify="left")
        table.add_column(i18n.t(lang, "col.feature"), style="bold")
        table.add_column(f"{i18n.t(lang, 'col.claim_c')} / {i18n.t(lang, 'col.claim_v')}")
        table.add_column(i18n.t(lang, "col.measured"))
        table.add_column(i18n.t(lang, "col.verdict"))
        for row in an.rows:
            measured = Text()
            for i, cell in enumerate(row.cells):
                if i:
                    measured.append("\n")
                measured.append(cell.backend.label, style="bold")
                measured.append(": ")
                if cell.missing:
                    measured.append(i18n.t(lang, "not_measured"), style="dim italic")
                else:
                    measured.append(cell.headline or cell.text)
            # Text objects, never markup strings: names from results may contain [brackets].
            table.add_row(Text(row.title), Text(f"{row.claim_c} / {row.claim_v}"), measured,
                          Text(row.verdict_label, style=VERDICT_STYLES.get(row.verdict, "")))
        console.print(table)
        for run in an.runs:
            if run.incomplete:
                console.print(Text(f"{run.run_id}: {i18n.t(lang, 'env.incomplete')}", style="bold red"))
    if output.written:
        console.print(Text(i18n.t(lang, "terminal.written"), style="bold"))
        for path in output.written:
            console.print(Text(f"  {path}"))


@click.command("report")
@click.argument("results_dirs", nargs=-1, required=True, metavar="RESULTS_DIR...",
                type=click.Path(file_okay=True, dir_okay=True))
@click.option("--out", "out", type=click.Path(), default=None,
              help="Directory for report.html, report.md and figures/ (default: the first results directory).")
@click.option("--format", "formats", default="html,md", show_default=True,
              help="Comma-separated formats to write: html, md.")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the report (zh keeps the textbook's original wording).")
def report(results_dirs: tuple[str, ...], out: str | None, formats: str, lang: str) -> None:
    """Turn results directories into the textbook comparison report (HTML and Markdown)."""
    from reports.build import make_report

    output = make_report(list(results_dirs), out=out, formats=formats, lang=lang)
    print_summary(output)
