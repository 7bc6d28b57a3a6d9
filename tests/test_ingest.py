"""Reading a task's table: formats, checks with one-line errors, and checksummed downloads."""

from __future__ import annotations

import gzip
import hashlib
import threading
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler

import numpy as np
import pytest

from chemlm.data.ingest import download, read_task_table
from chemlm.io import InputError
from chemlm.tasks import TaskSpec, TaskType

BINARY = TaskSpec("t", "-", "smiles", ("y",), TaskType.BINARY)


def write(tmp_path, text: str, name: str = "t.csv", raw: bytes | None = None):
    path = tmp_path / name
    path.write_bytes(raw if raw is not None else text.encode())
    return path


def test_plain_table(tmp_path):
    table = read_task_table(write(tmp_path, "smiles,y\nCCO,1\n c1ccccc1 ,0\n,1\n"), BINARY)
    assert list(table.columns) == ["mol_id", "row", "smiles", "y"]
    assert table["smiles"].tolist() == ["CCO", "c1ccccc1", ""]
    assert table["mol_id"].tolist() == ["0", "1", "2"] and table["y"].tolist() == [1.0, 0.0, 1.0]


def test_gzip_bom_crlf_and_spaces(tmp_path):
    text = "\ufeffsmiles , y\r\nCCO,1\r\nCCN, 0\r\n"
    path = write(tmp_path, "", name="t.data", raw=gzip.compress(text.encode("utf-8")))
    table = read_task_table(path, BINARY)
    assert table["smiles"].tolist() == ["CCO", "CCN"] and table["y"].tolist() == [1.0, 0.0]


def test_id_column_and_multilabel_gaps(tmp_path):
    task = TaskSpec("t", "-", "smiles", ("a", "b"), TaskType.MULTILABEL, id_column="id")
    table = read_task_table(write(tmp_path, "id,smiles,a,b\nX1,CCO,1,\nX2,CCN,0,1\n"), task)
    assert table["mol_id"].tolist() == ["X1", "X2"]
    assert np.isnan(table["b"][0]) and table["a"].tolist() == [1.0, 0.0]


def test_multiclass_labels_stay_text(tmp_path):
    task = TaskSpec("t", "-", "smiles", ("activity",), TaskType.MULTICLASS)
    table = read_task_table(write(tmp_path, "smiles,activity\nCCO,CI\nCCN,CA\nCCC,CM\n"), task)
    assert table["activity"].tolist() == ["CI", "CA", "CM"]


@pytest.mark.parametrize(
    ("text", "task", "message"),
    [
        ("smiles,y\n", BINARY, r"t\.csv: no data rows \(header only\)"),
        ("", BINARY, r"t\.csv: file is empty"),
        ("smile,y\nCCO,1\n", BINARY, r"t\.csv: no column 'smiles' \(task 't'\); columns are: smile, y"),
        ("smiles,z\nCCO,1\n", BINARY, r"no column 'y'"),
        ("smiles,y\nCCO,1\nCCN,active\n", BINARY, r"t\.csv, line 3: label column 'y' has non-numeric value 'active'"),
        ("smiles,y\nCCO,1\nCCN,2\n", BINARY, r"t\.csv, line 3: label column 'y' has 2; expected 0 or 1"),
        ("smiles,y\nCCO,1\nCCN,1\n", BINARY, r"label column 'y' has only one class \(1\)"),
        (
            "id,smiles,y\nA,CCO,1\nA,CCN,0\n",
            TaskSpec("t", "-", "smiles", ("y",), TaskType.BINARY, id_column="id"),
            r"t\.csv, line 3: id column 'id' repeats 'A'",
        ),
    ],
)
def test_bad_tables_give_one_line_errors(tmp_path, text, task, message):
    with pytest.raises(InputError, match=message) as caught:
        read_task_table(write(tmp_path, text), task)
    assert "\n" not in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.csv: file not found"):
        read_task_table(tmp_path / "nope.csv", BINARY)


@pytest.fixture
def served(tmp_path):
    """A one-file HTTP server on localhost."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "data.csv").write_text("smiles,y\nCCO,1\nCCN,0\n")
    server = HTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "www")))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/data.csv", hashlib.sha256(b"smiles,y\nCCO,1\nCCN,0\n").hexdigest()
    server.shutdown()


def test_download_checks_sha256(tmp_path, served):
    url, digest = served
    target = tmp_path / "cache" / "data.csv"
    download(url, target, digest, "t")
    assert target.read_text().startswith("smiles,y")
    wrong = tmp_path / "cache" / "wrong.csv"
    with pytest.raises(InputError, match=r"task 't': .* has sha256 [0-9a-f]{64}, the config expects 0{64}"):
        download(url, wrong, "0" * 64, "t")
    assert not wrong.exists()  # nothing half-written is left behind
    assert not any(path.name.startswith(".") for path in wrong.parent.iterdir())


def test_unreachable_url(tmp_path):
    with pytest.raises(InputError, match=r"task 't': could not download http://127\.0\.0\.1:9/x\.csv .* tasks\.t\.source"):
        download("http://127.0.0.1:9/x.csv", tmp_path / "x.csv", "0" * 64, "t")
    assert not (tmp_path / "x.csv").exists()
