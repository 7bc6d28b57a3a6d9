"""The report page (one self-contained HTML file) and the Markdown summary, written atomically."""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chemlm.config import ReportSettings, Study
from chemlm.io import atomic_path
from chemlm.report.classes import classes_section
from chemlm.report.explanations import explanations_section
from chemlm.report.provenance import provenance_section
from chemlm.report.results import DeclaredInputs, StudyResults
from chemlm.report.sections import (
    Section,
    comparison_statements,
    curves_section,
    embeddings_section,
    learning_section,
    calibration_section,
    overview_section,
    overview_table,
    comparison_section,
    paired_comparisons,
    paired_section,
    predictions_section,
    pretraining_section,
    qc_section,
    search_section,
    split_section,
    uncertainty_section,
)

logger = logging.getLogger(__name__)

TITLE = "Chemical language models: fine-tuning report"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2330; background: #fff; }
header { background: #1f3b57; color: #fff; padding: 1.2rem 2rem; }
header h1 { margin: 0; font-size: 1.5rem; }
nav { padding: 0.6rem 2rem; background: #eef2f6; border-bottom: 1px solid #d4dbe3; position: sticky; top: 0; }
nav a { margin-right: 1.2rem; color: #1f3b57; text-decoration: none; font-weight: 600; }
main { padding: 0 2rem 3rem; max-width: 1400px; }
section { border-bottom: 1px solid #e3e7ec; padding-bottom: 1rem; }
h2 { margin-top: 2rem; color: #1f3b57; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #d4dbe3; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f4f6f9; }
tr.baseline td { background: #fbfaf3; }
tr.reference td { background: #f3f0fa; font-style: italic; }
table.overview td:nth-child(n+3) { font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; border: 1px solid #e3e7ec; }
figcaption { font-size: 0.85rem; color: #56606e; }
.note { color: #8a5a00; background: #fff8e6; padding: 0.4rem 0.7rem; border-left: 3px solid #e0a800; }
pre { background: #f4f6f9; padding: 0.8rem; overflow-x: auto; font-size: 0.8rem; }
details { margin: 0.5rem 0; }
summary { cursor: pointer; color: #1f3b57; }
"""


def build_sections(results: StudyResults, repository: Path) -> list[Section]:
    """The page's sections in order; those that do not apply to the study (None) are left out."""
    settings = results.study.report
    sections = [
        overview_section(results, settings),
        comparison_section(results, settings),
        paired_section(results, settings),
        classes_section(results),
        curves_section(results),
        learning_section(results),
        search_section(results),
        calibration_section(results),
        uncertainty_section(results),
        predictions_section(results),
        explanations_section(results),
        pretraining_section(results),
        embeddings_section(results),
        qc_section(results),
        split_section(results),
        provenance_section(results, repository),
    ]
    return [section for section in sections if section is not None]


def render_page(sections: Sequence[Section], title: str = TITLE) -> str:
    navigation = "".join(f'<a href="#{section.anchor}">{html.escape(section.title)}</a>' for section in sections)
    body = "".join(
        f'<section id="{section.anchor}"><h2>{html.escape(section.title)}</h2>{section.body}</section>' for section in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><header><h1>{html.escape(title)}</h1></header><nav>{navigation}</nav><main>{body}</main></body></html>\n"
    )


def summary_markdown(results: StudyResults, settings: ReportSettings) -> str:
    """The overview table, what it says, and the paired differences, in Markdown."""
    lines = [f"# {TITLE}", "", "Test-fold metric, mean ± sd over split instances (n = instances); no model is marked best: the statements below "
             "say which differences are real (every pair: results/comparison.csv); published values are single runs unless their row names a source.", ""]
    lines += [overview_table(results, settings).markdown(), "", "## How the numbers compare", ""]
    lines += [f"- {statement}" for statement in comparison_statements(results, settings)]
    comparisons = paired_comparisons(results, settings)
    if comparisons:
        lines += ["", "## Paired comparison", ""]
        for comparison in comparisons:
            lines += [f"### {comparison.task} / {comparison.split}", "", comparison.table().markdown(), "", comparison.verdict(), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(
    config: Mapping[str, Any],
    inputs: Iterable[str],
    repository: str | Path,
    html_path: str | Path,
    markdown_path: str | Path,
    root: str | Path = ".",
) -> None:
    """Write the HTML report and the Markdown summary of a workflow run from the files in `inputs` (paths relative
    to `root`, as chemlm.layout.report_inputs lists them), and from no other file."""
    study = Study.from_config(config)
    results = StudyResults.load(study, DeclaredInputs(inputs, root))
    sections = build_sections(results, Path(repository))
    page = render_page(sections)
    with atomic_path(html_path) as temporary:
        temporary.write_text(page, encoding="utf-8")
    with atomic_path(markdown_path) as temporary:
        temporary.write_text(summary_markdown(results, study.report), encoding="utf-8")
    logger.info("report: %d sections, %d models, %.1f MB", len(sections), len(results.models()), len(page.encode()) / 2**20)
