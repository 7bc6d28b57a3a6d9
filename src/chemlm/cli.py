"""The `chemlm` command: score new molecules with fine-tuned model folders, outside Snakemake.

  chemlm predict --model DIR [--model DIR ...] --input FILE --output FILE [--smiles-column NAME] [--id-column NAME]

Several --model folders (the seeds of a checkpoint, say) form an ensemble: the output has their mean, their sd and
the calibrated probability per label, one row per input row in input order (chemlm.scoring). A folder fine-tuned by
this workflow (results/<task>/finetune/<checkpoint>/<split>/seed<seed>/model) carries everything scoring needs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from chemlm.calibration import METHODS
from chemlm.io import InputError


def score_file(
    model_dirs: list[Path], input_path: Path, out_path: Path, smiles_column: str = "smiles",
    id_column: str | None = None, calibration_method: str = "platt", workers: int = 1,
) -> int:
    """A CSV or .smi file scored by the ensemble of `model_dirs`, canonicalised as the models' training molecules
    were (when RDKit is installed; else as given, and each row says so)."""
    from chemlm.library import prepare_chunk, read_chunks  # RDKit, where installed
    from chemlm.predict import ModelEnsemble  # torch and transformers load only for a command that needs them
    from chemlm.scoring import write_scores

    ensemble = ModelEnsemble(model_dirs, calibration_method)
    chunks = (prepare_chunk(chunk, ensemble.isomeric_smiles, workers) for chunk in read_chunks(input_path, smiles_column, id_column))
    return write_scores(ensemble, chunks, out_path)


def parser() -> argparse.ArgumentParser:
    commands = argparse.ArgumentParser(prog="chemlm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = commands.add_subparsers(dest="command", required=True)
    predict = verbs.add_parser("predict", help="score a CSV or .smi file with one or more fine-tuned model folders")
    predict.add_argument("--model", type=Path, action="append", required=True, help="a fine-tuned model folder (repeat for an ensemble)")
    predict.add_argument("--input", type=Path, required=True, help="a CSV with a SMILES column, or a .smi file; plain or gzipped")
    predict.add_argument("--output", type=Path, required=True, help="the CSV to write (gzipped if it ends in .gz)")
    predict.add_argument("--smiles-column", default="smiles", help="the input CSV's SMILES column (default: smiles)")
    predict.add_argument("--id-column", default=None, help="the input CSV's id column (default: the row number)")
    predict.add_argument("--calibration", choices=METHODS, default="platt", help="calibration method (default: platt)")
    predict.add_argument("--workers", type=int, default=1, help="processes canonicalising SMILES (default: 1)")
    return commands


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        rows = score_file(args.model, args.input, args.output, args.smiles_column, args.id_column, args.calibration, args.workers)
    except InputError as error:
        print(f"chemlm: error: {error}", file=sys.stderr)
        return 2
    print(f"chemlm: {rows} rows scored into {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
