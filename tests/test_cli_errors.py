"""Bad input: a clear one-line error naming the file/column, exit code 2, no traceback, no output left."""

import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import OT3_SCHEMA, group_rows, write_ot3

from offcurate.cli import main


def run_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["offcurate", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def _corrupt(folder):
    folder.mkdir()
    (folder / "train-00000-of-00001.parquet").write_bytes(b"PAR1 this is not parquet at all")


def _missing_domain(folder):
    folder.mkdir()
    pq.write_table(
        pa.table({"difficulty": [1], "source": ["s"], "conversations": [[]]}), folder / "a.parquet"
    )


def _difficulty_as_string(folder):
    folder.mkdir()
    table = pa.table({"difficulty": ["hard"], "source": ["s"], "domain": ["math"], "conversations": [[]]})
    pq.write_table(table, folder / "a.parquet")


def _conversations_as_string(folder):
    folder.mkdir()
    table = pa.table({"difficulty": [1], "source": ["s"], "domain": ["math"], "conversations": ["hi"]})
    pq.write_table(table, folder / "a.parquet")


def _no_rows(folder):
    folder.mkdir()
    pq.write_table(OT3_SCHEMA.empty_table(), folder / "a.parquet")


def _only_code(folder):
    write_ot3(folder, [group_rows("q", ["1"], domain="code")])


CASES = {
    "missing_path": (None, "filter", "no such file or folder"),
    "empty_folder": (lambda f: f.mkdir(), "filter", "no *.parquet files"),
    "corrupt_parquet": (_corrupt, "filter", "not a readable Parquet file"),
    "missing_column": (_missing_domain, "filter", "missing column 'domain'"),
    "wrong_type": (_difficulty_as_string, "filter", "column 'difficulty' has type string, expected int64"),
    "wrong_nested_type": (_conversations_as_string, "filter", "column 'conversations' has type string"),
    "no_rows": (_no_rows, "filter", "hold no rows"),
    "nothing_math": (_only_code, "filter", "no row of domain math"),
    "vote_on_raw_input": (_only_code, "vote", "missing column 'question_id'"),
    "stats_on_non_vote_folder": (_only_code, "stats", "no questions/*.parquet"),
}


@pytest.mark.parametrize("make, command, message", list(CASES.values()), ids=list(CASES))
def test_bad_input_one_line_exit_2(tmp_path, monkeypatch, capsys, make, command, message):
    source = tmp_path / "in"
    if make:
        make(source)
    code, err = run_cli(monkeypatch, capsys, command, "-i", str(source), "-o", str(tmp_path / "out"))
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert str(source) in err or "domain" in message
    assert not (tmp_path / "out").exists()


def test_existing_output_is_not_overwritten(tmp_path, monkeypatch, capsys):
    write_ot3(tmp_path / "raw", [group_rows("q", ["1", "1"])])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("precious")
    code, err = run_cli(
        monkeypatch, capsys, "filter", "-i", str(tmp_path / "raw"), "-o", str(tmp_path / "out")
    )
    assert code == 2 and "--overwrite" in err
    assert (tmp_path / "out" / "keep.txt").read_text() == "precious"
    code, _ = run_cli(
        monkeypatch, capsys, "filter", "-i", str(tmp_path / "raw"), "-o", str(tmp_path / "out"), "--overwrite"
    )
    assert code == 0 and not (tmp_path / "out" / "keep.txt").exists()


def test_failed_stage_leaves_no_half_written_folder(tmp_path, monkeypatch):
    """An exception half-way through writing removes the temporary folder and never renames it."""
    from offcurate.curate import filter as filter_stage

    write_ot3(tmp_path / "raw", [group_rows("q", ["1", "1"])])

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(filter_stage, "write_card", boom)
    with pytest.raises(RuntimeError):
        filter_stage.run_filter(tmp_path / "raw", tmp_path / "out")
    assert list(tmp_path.iterdir()) == [tmp_path / "raw"]


@pytest.mark.parametrize("args", [["filter", "--no-such-option"], ["vote", "--workers", "many"], ["nope"]])
def test_usage_errors_exit_2(monkeypatch, capsys, args):
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "Traceback" not in err


def test_bad_edges_exit_2(tmp_path, monkeypatch, capsys):
    code, err = run_cli(monkeypatch, capsys, "stats", "-i", str(tmp_path), "--edges", "a,b")
    assert code == 2 and "--edges" in err
