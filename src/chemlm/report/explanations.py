"""The report's "Why the models say so" section: per task and split, the test molecules worth a look (chemlm.explain)
drawn with every model's atom weights, why each was chosen, and how complete the integrated gradients were."""

from __future__ import annotations

import pandas as pd

from chemlm import layout
from chemlm.io import read_csv
from chemlm.report.results import StudyResults
from chemlm.report.sections import Section
from chemlm.report.tables import Table, heading, note, number, paragraph, png_figure


def completeness_text(explained: pd.DataFrame) -> str:
    """How complete the transformers' attributions were and how much went to non-atom tokens."""
    transformers = explained[explained["complete"].notna()]
    if transformers.empty:
        return ""
    complete = transformers["complete"].astype(str).str.lower() == "true"
    shares = transformers[[column for column in transformers.columns if column.startswith("share:")]].sum(axis=1)
    return (f"Integrated gradients: {int(complete.sum())} of {len(transformers)} attributions sum to the change of the output "
            f"from the baseline within 5 % (largest gap {transformers['completeness_gap'].abs().max():.2g}, at up to "
            f"{int(transformers['steps'].max())} steps); on average {shares.mean():.0%} of the absolute attribution went to "
            "tokens that are no atom (ring closures, bonds, branches, brackets).")


def explanations_section(results: StudyResults) -> Section | None:
    if results.study.explain is None:
        return None
    body = paragraph("Each row is a test molecule of the first split instance, chosen for the reason given; each column a "
                     "model, its atom weights drawn as a colour map (green raises the output named above the drawing, pink "
                     "lowers it). Transformers: integrated gradients over the input tokens, summed per atom; fingerprint "
                     "baselines: the change in the prediction when the atom's ECFP4 environments are removed.")
    for task in results.tasks:
        for split in results.splits:
            body += heading(f"{task} / {split}")
            selected_path = results.files(layout.explain_file("selected.csv", task, split))
            if not selected_path.is_file():
                body += note(f"{selected_path} is missing.")
                continue
            selected = read_csv(selected_path, dtype={"id": str})
            rows = [[row.id, row.reason, str(row.target), str(row.truth), f"{number(row.mean)} ± {number(row.sd)}", row.smiles]
                    for row in selected.itertuples()]
            body += Table(["molecule", "chosen as", "explained", "true", "models' mean ± sd", "SMILES"], rows).html()
            body += paragraph(completeness_text(read_csv(results.files(layout.explain_file("explanations.csv", task, split)), dtype={"id": str})))
            body += png_figure(results.files(layout.explain_file("explanations.png", task, split)), f"{task} / {split}: atom attributions")
    return Section("explanations", "Why the models say so", body)
