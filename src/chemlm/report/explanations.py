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
    share_columns = [column for column in transformers.columns if column.startswith("share:")]
    tokens = transformers.dropna(subset=share_columns, how="all")  # the transformers' rows; chemprop reads no tokens
    shares = (f"; on average {tokens[share_columns].sum(axis=1).mean():.0%} of a transformer's absolute attribution went to "
              "tokens that are no atom (ring closures, bonds, branches, brackets)") if len(tokens) else ""
    return (f"Integrated gradients: {int(complete.sum())} of {len(transformers)} attributions sum to the change of the output "
            f"from the baseline within 5 % (largest gap {transformers['completeness_gap'].abs().max():.2g}, at up to "
            f"{int(transformers['steps'].max())} steps){shares}.")


def check_part(results: StudyResults, task: str, split: str) -> str:
    """A rule task's attributions against the known answer, per model beside its test metric and random weights."""
    rule = results.study.rule_tasks[task]
    check = read_csv(results.files(layout.explain_file("attribution_check.csv", task, split)))
    first = results.study.instances(split)[0].name
    metric = results.metric_for(task, results.study.report.metric)
    rows = []
    for row in check.itertuples():
        tested = results.instance_values(task, row.model, split, metric).get(first)
        rows.append([row.model, number(tested) if tested is not None else "—", f"{row.atom_auroc_mean:.3f} ± {number(row.atom_auroc_sd)}",
                     str(int(row.molecules))])
    label = f"every one of {', '.join(rule['present'])}" + (f" and none of {', '.join(rule['absent'])}" if rule["absent"] else "")
    return (heading("Against the known answer", 4)
            + paragraph(f"The label is 1 where the molecule matches {label}; the atoms the present patterns match are the "
                        f"answer. Per model: its test {metric} ({first}) and the AUROC of its atom weights against those atoms, "
                        "mean ± sd over the positive test molecules scored; random weights score about 0.5.")
            + Table(["model", f"test {metric}", "atom AUROC", "molecules"], rows).html())


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
            if task in results.study.rule_tasks:
                body += check_part(results, task, split)
    return Section("explanations", "Why the models say so", body)
