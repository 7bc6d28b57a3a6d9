"""The `chemlm` command: score new molecules with fine-tuned model folders, outside Snakemake.

  chemlm predict --model DIR [--model DIR ...] --input FILE --output FILE [--smiles-column NAME] [--id-column NAME]
                 [--workers N] [--rdkit-time-limit SECONDS] [--no-test-time-augment]

  chemlm explain --model PATH [--model PATH ...] (--input FILE | --smiles SMILES [--smiles SMILES ...]) --output DIR
                 [--target CLASS_OR_LABEL] [--steps N] [--baseline pad|mask] [--smiles-column NAME] [--id-column NAME]
                 [--descriptor-names FILE]
  chemlm compare TABLE --group-column NAME --subject-column NAME --metric NAME [--metric NAME ...] --output DIR
                 [--min-difference METRIC=VALUE ...] [--lower-is-better METRIC ...] [--alpha A]

Several --model folders (the seeds of a checkpoint, say) form an ensemble: the output has their mean, their sd and
the calibrated probability per label, one row per input row in input order (chemlm.scoring). A folder fine-tuned by
this workflow (results/<task>/finetune/<checkpoint>/<split>/seed<seed>/model) carries everything scoring needs.
A model evaluated with test-time augmentation scores each molecule as the mean over the same SMILES variants (which
needs RDKit); --no-test-time-augment reads one SMILES per molecule, and then gives no calibrated probabilities.

`explain` writes, for each molecule of --input (or each --smiles), the atom attributions of every --model (a fine-tuned
folder: integrated gradients over the input tokens, mapped to RDKit's atoms; a stored fingerprint baseline, model.skops:
the change in its prediction without each atom's ECFP4 environments; chemlm.explain) as atoms.csv and molecules.csv,
and a drawing per molecule with the models side by side (needs RDKit).
`compare` reads a long-format CSV of results made anywhere (one row per method and split instance, a column per metric,
as the method-comparison guidelines' notebooks keep them) and writes, per metric, every pair's mean difference,
simultaneous interval and adjusted p value (comparison.csv) and a figure, as the workflow's report compares its models
(chemlm.comparison).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from chemlm.calibration import METHODS
from chemlm.io import InputError
from chemlm.isolation import DEFAULT_TIME_LIMIT, Isolation
from chemlm.layout import CHEMPROP_DESCRIPTION


def score_file(
    model_dirs: list[Path], input_path: Path, out_path: Path, smiles_column: str = "smiles",
    id_column: str | None = None, calibration_method: str = "platt", workers: int = 1, test_time_augment: bool = True,
    rdkit_time_limit: float = DEFAULT_TIME_LIMIT,
) -> int:
    """A CSV or .smi file scored by the ensemble of `model_dirs`, canonicalised as the models' training molecules
    were (when RDKit is installed; else as given, and each row says so), averaged over SMILES variants as the models
    were evaluated unless `test_time_augment` is False."""
    from chemlm.library import add_random_smiles, prepare_chunk, rdkit_available, read_chunks  # RDKit, where installed
    from chemlm.scoring import write_scores

    # torch, transformers and chemprop load only for a command that needs them
    chemprop_folders = [folder for folder in model_dirs if (Path(folder) / CHEMPROP_DESCRIPTION).is_file()]
    if chemprop_folders and len(chemprop_folders) < len(model_dirs):
        raise InputError(f"{chemprop_folders[0]}: a chemprop model among fine-tuned ones; score them in separate ensembles")
    if chemprop_folders:
        from chemlm.models.mpnn import MpnnEnsemble

        ensemble = MpnnEnsemble(model_dirs, calibration_method)
    else:
        from chemlm.predict import ModelEnsemble

        ensemble = ModelEnsemble(model_dirs, calibration_method, test_time_augment=test_time_augment)
    isolation = Isolation(workers, rdkit_time_limit)
    if ensemble.random_smiles and not rdkit_available():
        raise InputError("the models average their scores over SMILES variants of each molecule, which needs RDKit here: "
                         "install it, or pass --no-test-time-augment (no calibrated probabilities then)")

    def prepared(chunk):
        chunk = prepare_chunk(chunk, ensemble.isomeric_smiles, isolation)
        if ensemble.random_smiles:
            chunk = add_random_smiles(chunk, ensemble.random_smiles, ensemble.isomeric_smiles, isolation, ensemble.random_smiles_seed)
        return chunk

    return write_scores(ensemble, (prepared(chunk) for chunk in read_chunks(input_path, smiles_column, id_column)), out_path)


# The descriptors LightGBM's features hold (ChemBERTa-2's MTR list), where this package's repository keeps them.
DESCRIPTOR_NAMES = Path(__file__).resolve().parents[2] / "resources" / "chemberta2-mtr-descriptors.json"


def explain_molecules(model_dirs: list[Path], out_dir: Path, input_path: Path | None = None, smiles: list[str] | None = None,
                      smiles_column: str = "smiles", id_column: str | None = None, target: str | None = None, steps: int = 50,
                      baseline: str = "pad", descriptor_names: Path = DESCRIPTOR_NAMES) -> int:
    """Atom attributions of every model (a fine-tuned model folder, a chemprop one, or a stored fingerprint baseline's
    model.skops with LightGBM's `descriptor_names`) for each valid molecule of a file or of `smiles`, canonicalised as the models'
    training molecules were: out_dir/atoms.csv, molecules.csv (and invalid.csv, the molecules left out, with why) and
    drawings/<id>.png. The number of molecules explained."""
    import pandas as pd

    from chemlm.descriptors import load_descriptor_names
    from chemlm.explain.drawing import draw_molecule
    from chemlm.explain.task_explanations import ExplainedModels
    from chemlm.io import write_csv
    from chemlm.library import prepare_chunk, rdkit_available, read_chunks
    from chemlm.predict import FineTunedModel

    if not rdkit_available():
        raise InputError("explain draws the molecules with RDKit: install it")
    if (input_path is None) == (not smiles):
        raise InputError("give the molecules either as --input FILE or as --smiles")
    if input_path is not None:
        rows = pd.concat(list(read_chunks(input_path, smiles_column, id_column)), ignore_index=True)
    else:
        rows = pd.DataFrame({"row": range(len(smiles)), "id": [f"smiles{index + 1}" for index in range(len(smiles))], "input_smiles": smiles})
    stored_baselines = [path for path in model_dirs if Path(path).is_file()]
    mpnns = [path for path in model_dirs if (Path(path) / CHEMPROP_DESCRIPTION).is_file()]
    folders = [path for path in model_dirs if path not in stored_baselines and path not in mpnns]
    isomeric = {FineTunedModel.load(folder).isomeric_smiles for folder in folders}
    if mpnns:
        from chemlm.models.mpnn import load_mpnn

        isomeric |= {load_mpnn(Path(folder)).isomeric_smiles for folder in mpnns}
    if len(isomeric) > 1:
        raise InputError("the models canonicalised their SMILES differently (with and without stereochemistry); explain them apart")
    # the fingerprint baselines read the workflow's canonical SMILES, stereochemistry kept by default
    prepared = prepare_chunk(rows, isomeric.pop() if isomeric else True)
    valid = prepared[prepared["valid"]].reset_index(drop=True)
    valid = valid[["id", "smiles"]].assign(id=valid["id"].astype(str))
    models = ExplainedModels({str(path): path for path in folders}, {str(path): path for path in stored_baselines},
                             {str(path): path for path in mpnns}, load_descriptor_names(descriptor_names) if stored_baselines else ())
    atoms, molecules = models.explain(valid, target, steps, baseline)
    write_csv(prepared[~prepared["valid"]][["row", "id", "input_smiles", "reason"]], out_dir / "invalid.csv")
    write_csv(atoms, out_dir / "atoms.csv")
    write_csv(molecules, out_dir / "molecules.csv")
    for mol_id in molecules["id"].unique():
        draw_molecule(mol_id, atoms, molecules, out_dir / "drawings" / f"{safe_name(mol_id)}.png")
    return len(valid)


def safe_name(text: str) -> str:
    """A molecule id as a file name."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:100] or "molecule"


def parser() -> argparse.ArgumentParser:
    commands = argparse.ArgumentParser(prog="chemlm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = commands.add_subparsers(dest="command", required=True)
    predict = verbs.add_parser("predict", help="score a CSV or .smi file with one or more fine-tuned model folders")
    predict.add_argument("--model", type=Path, action="append", required=True, help="a fine-tuned model folder, or a chemprop one (repeat for an ensemble)")
    predict.add_argument("--input", type=Path, required=True, help="a CSV with a SMILES column, or a .smi file; plain or gzipped")
    predict.add_argument("--output", type=Path, required=True, help="the CSV to write (gzipped if it ends in .gz)")
    predict.add_argument("--smiles-column", default="smiles", help="the input CSV's SMILES column (default: smiles)")
    predict.add_argument("--id-column", default=None, help="the input CSV's id column (default: the row number)")
    predict.add_argument("--calibration", choices=METHODS, default="platt", help="calibration method (default: platt)")
    predict.add_argument("--workers", type=int, default=1, help="processes canonicalising SMILES (default: 1)")
    predict.add_argument("--rdkit-time-limit", type=float, default=DEFAULT_TIME_LIMIT,
                         help=f"seconds RDKit may spend on one molecule before it is left out as invalid (default: {DEFAULT_TIME_LIMIT:g})")
    predict.add_argument("--no-test-time-augment", dest="test_time_augment", action="store_false",
                         help="read one SMILES per molecule even where a model was evaluated on several (its calibration then does not apply)")
    explain = verbs.add_parser("explain", help="atom attributions of fine-tuned model folders, drawn on the molecules")
    explain.add_argument("--model", type=Path, action="append", required=True,
                         help="a fine-tuned model folder, a chemprop one, or a fingerprint baseline's model.skops (repeat to compare models)")
    explain.add_argument("--input", type=Path, help="a CSV with a SMILES column, or a .smi file; plain or gzipped")
    explain.add_argument("--smiles", action="append", help="a SMILES to explain (repeat for several)")
    explain.add_argument("--output", type=Path, required=True, help="the folder for atoms.csv, molecules.csv and drawings/")
    explain.add_argument("--target", default=None, help="the class (multi-class) or label (several labels) to explain")
    explain.add_argument("--steps", type=int, default=50, help="integrated-gradients steps, doubled where completeness fails (default: 50)")
    explain.add_argument("--baseline", choices=("pad", "mask"), default="pad", help="the tokens of the baseline input (default: pad)")
    explain.add_argument("--smiles-column", default="smiles", help="the input CSV's SMILES column (default: smiles)")
    explain.add_argument("--id-column", default=None, help="the input CSV's id column (default: the row number)")
    explain.add_argument("--descriptor-names", type=Path, default=DESCRIPTOR_NAMES,
                         help="the descriptor list of a LightGBM baseline's features (default: ChemBERTa-2's MTR list)")
    compare = verbs.add_parser("compare", help="compare methods' results over the same split instances (repeated-measures tests)")
    compare.add_argument("table", type=Path, help="a CSV with one row per method and split instance and a column per metric")
    compare.add_argument("--group-column", required=True, help="the column naming the method (model)")
    compare.add_argument("--subject-column", required=True, help="the column naming the split instance (e.g. cv_cycle)")
    compare.add_argument("--metric", action="append", required=True, help="a metric column to compare (repeat for several)")
    compare.add_argument("--output", type=Path, required=True, help="the folder for comparison.csv and the figures")
    compare.add_argument("--min-difference", action="append", default=[], metavar="METRIC=VALUE", type=metric_value,
                         help="the smallest difference that matters for a metric (defaults: AUROC, AUPRC, MCC 0.1; MAE 0.2)")
    compare.add_argument("--lower-is-better", action="append", default=[], metavar="METRIC",
                         help="a metric where smaller is better (known: rmse, mae, mse, brier, ece, log_loss)")
    compare.add_argument("--alpha", type=float, default=0.05, help="family-wise significance level (default: 0.05)")
    return commands


def metric_value(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected METRIC=VALUE, got '{text}'") from None


def run(args: argparse.Namespace) -> str:
    """Carry out a parsed command; the line to print when it is done."""
    if args.command == "compare":
        from chemlm.report.comparison import compare_table

        comparisons = compare_table(args.table, args.output, args.group_column, args.subject_column, args.metric,
                                    dict(args.min_difference), args.lower_is_better, args.alpha)
        return "\n".join(comparison.verdict() for comparison in comparisons) + f"\nchemlm: comparison written to {args.output}"
    if args.command == "explain":
        explained = explain_molecules(args.model, args.output, args.input, args.smiles, args.smiles_column, args.id_column,
                                      args.target, args.steps, args.baseline, args.descriptor_names)
        return f"chemlm: {explained} molecules explained into {args.output}"
    rows = score_file(args.model, args.input, args.output, args.smiles_column, args.id_column, args.calibration, args.workers,
                      args.test_time_augment, args.rdkit_time_limit)
    return f"chemlm: {rows} rows scored into {args.output}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        done = run(args)
    except InputError as error:
        print(f"chemlm: error: {error}", file=sys.stderr)
        return 2
    print(done, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
