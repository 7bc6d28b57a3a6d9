"""Adapter: the self-contained HTML report and the Markdown summary of the whole run."""

from chemlm.logs import step_log
from chemlm.report.page import write_report

with step_log(snakemake):
    write_report(
        config=snakemake.params.config,
        inputs=snakemake.input,
        repository=snakemake.params.repository,
        html_path=snakemake.output.html,
        markdown_path=snakemake.output.markdown,
    )
