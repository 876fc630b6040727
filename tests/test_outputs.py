"""Output folders: cards that `datasets` opens, one writer per output, never over or inside an input, one line
on a full or read-only disk, and invalid UTF-8 refused by row and column (issue 13, items 1-5)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from builders import OT3_SCHEMA, group_rows, write_ot3, write_voted_groups
from cards import card_configs, open_every_config

from offcurate.cli import main
from offcurate.curate.io import output as output_module
from offcurate.curate.io.card import write_card
from offcurate.curate.io.errors import OffcurateError, OutputExistsError
from offcurate.curate.io.output import atomic_output


def run_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["offcurate", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not line.startswith("removed ")]
    assert len(lines) == 1, err
    return lines[0]


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- 1. cards ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "configs",
    [
        {"default": "*.parquet"},
        {"trajectories": "trajectories/*.parquet", "questions": "questions/*.parquet"},
        {"yes": "**/*.parquet", "null": "data/*.parquet"},  # names YAML would read as true / None
        {"by_group": "by_group.parquet", "&anchor": "[ab]*.parquet"},
    ],
    ids=["star", "two_folders", "yaml_keywords", "anchor_and_brackets"],
)
def test_card_front_matter_reads_back_as_written(tmp_path, configs):
    schema = pa.schema([("a", pa.string()), ("b", pa.list_(pa.struct([("x", pa.int64())])))])
    write_card(tmp_path, "t: a title", "body", {name: (glob, schema) for name, glob in configs.items()})
    assert card_configs(tmp_path) == configs
    front = yaml.safe_load((tmp_path / "README.md").read_text().split("---\n")[1])
    assert front["dataset_info"][0]["features"] == [
        {"name": "a", "dtype": "string"},
        {"name": "b", "list": [{"name": "x", "dtype": "int64"}]},
    ]


@pytest.fixture
def demo(sample_pipeline):
    return sample_pipeline


EXPECTED_ROWS = {
    "raw": {"default": 783},
    "math": {"default": 768},
    "voted": {"trajectories": 768, "questions": 48},
    "stats": {"by_group": 14, "pass_rate_hist": 9, "buckets": 48},
}


@pytest.mark.parametrize("stage", list(EXPECTED_ROWS))
def test_every_pipeline_folder_opens_in_datasets_by_every_config(demo, tmp_path, stage):
    assert open_every_config(demo / stage, tmp_path / "cache") == EXPECTED_ROWS[stage]


# --- 2. one writer per output -----------------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from offcurate.curate.io.output import output_lock
with output_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("command", ["vote", "train"])
def test_a_second_writer_of_the_same_output_is_refused(demo, tmp_path, monkeypatch, capsys, command):
    if command == "train":
        pytest.importorskip("torch")
    args = {
        "vote": ["vote", "-i", demo / "math", "--workers", "1"],
        "train": ["train", "-i", demo / "voted", "--model", "tiny-random", "--max-steps", "1"],
    }[command]
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = run_cli(monkeypatch, capsys, *args, "-o", out)
        assert code == 2
        assert f"another offcurate process (pid {holder.pid}) is writing this output" in one_line(err)
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock"]  # left by the killed holder
    if command == "vote":  # the lock of a dead process does not block
        code, err = run_cli(monkeypatch, capsys, *args, "-o", out)
        assert code == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_output_that_appears_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    with (
        pytest.raises(OutputExistsError, match="appeared while this run was writing"),
        atomic_output(out) as tmp,
    ):
        (tmp / "mine.txt").write_text("mine")
        out.mkdir()
        (out / "theirs.txt").write_text("theirs")
    assert listing(out) == {"theirs.txt": b"theirs"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_empty_output_folder_is_filled(tmp_path):
    (tmp_path / "out").mkdir()
    with atomic_output(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("a")
    assert listing(tmp_path / "out") == {"a.txt": b"a"}


@pytest.mark.parametrize("swap", ["renameat2_exchange", "two_renames"])
def test_overwrite_replaces_the_output_and_leaves_nothing_else(tmp_path, monkeypatch, swap):
    if swap == "two_renames":  # filesystems without RENAME_EXCHANGE
        monkeypatch.setattr(output_module, "exchange", lambda a, b: False)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with atomic_output(tmp_path / "out", overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert listing(tmp_path) == {"out/new.txt": b"new"}


def test_exchange_swaps_two_folders(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.txt").write_text(name)
    if not output_module.exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("renameat2(RENAME_EXCHANGE) not available here")
    assert listing(tmp_path) == {"a/b.txt": b"b", "b/a.txt": b"a"}


def test_a_rerun_removes_what_an_interrupted_run_left(tmp_path):
    for stale in (".out.tmp-999999", ".out.old-999998"):
        (tmp_path / stale).mkdir()
        (tmp_path / stale / "half.parquet").write_bytes(b"half")
    (tmp_path / ".other.tmp-1").mkdir()  # another output's: not ours to remove
    with atomic_output(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-1", "out"]


# --- 3. output equal to, inside or around an input --------------------------------------------------------


def _stage_args(tmp_path: Path, source: Path) -> dict[str, list]:
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    return {
        "filter": ["filter", "-i", source],
        "vote": ["vote", "-i", source],
        "stats": ["stats", "-i", source],
        "stats_base": ["stats", "-i", tmp_path / "elsewhere", "--base-rollouts", source],
        "sample": ["sample", "-i", source],
        "rollout": ["rollout", "-i", source, "--model", "tiny-random"],
        "eval": ["eval", "-b", bench, "--responses", source],
        "eval_model": ["eval", "-b", bench, "--model", "tiny-random", "--responses", source],
        "compare": ["eval", "--compare", tmp_path / "elsewhere", source],
        "pipeline": ["pipeline", "-i", source],
        "train": ["train", "-i", source, "--model", "tiny-random"],
    }


RELATIONS = {
    "equal": (lambda src: src, ["--overwrite"], "the output is the input folder"),
    "inside": (lambda src: src / "inside", [], "the output is inside the input"),
    "around": (lambda src: src.parent, ["--overwrite"], "is inside the output folder"),
}


@pytest.mark.parametrize("relation", list(RELATIONS))
@pytest.mark.parametrize(
    "stage",
    [
        "filter",
        "vote",
        "stats",
        "stats_base",
        "sample",
        "rollout",
        "eval",
        "eval_model",
        "compare",
        "pipeline",
        "train",
    ],
)
def test_output_over_inside_or_around_an_input_is_refused(tmp_path, monkeypatch, capsys, stage, relation):
    if stage == "train":
        pytest.importorskip("torch")
    source = tmp_path / "work" / "in"
    write_ot3(source, [group_rows("q", ["1", "1"])])
    (tmp_path / "elsewhere").mkdir()
    args = _stage_args(tmp_path, source)[stage]
    output_of, flags, message = RELATIONS[relation]
    before = listing(tmp_path)
    code, err = run_cli(monkeypatch, capsys, *args, "-o", output_of(source), *flags)
    assert code == 2 and message in one_line(err)
    assert listing(tmp_path) == before  # the input is untouched, nothing was written


# --- 4. full disk, read-only folder -----------------------------------------------------------------------


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _no_space_pyarrow_style(*args, **kwargs):
    raise OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")  # no errno


def _read_only_mkdir(self, *args, **kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))


WRITE_FAULTS = {
    "filter_disk_full": (
        "filter",
        "offcurate.curate.io.shards.ShardWriter.write",
        _no_space,
        "No space left",
    ),
    "stats_disk_full_no_errno": (
        "stats",
        "polars.DataFrame.write_parquet",
        _no_space_pyarrow_style,
        "No space left on device",
    ),
    "vote_read_only": ("vote", "pathlib.Path.mkdir", _read_only_mkdir, "Read-only file system"),
}


@pytest.mark.parametrize("case", list(WRITE_FAULTS))
def test_a_write_failure_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys, case):
    """Faults injected in-process (tests run as root, so a chmod'ed folder would still be writable); a real
    tmpfs is exercised by ``test_a_real_small_or_read_only_disk``."""
    command, target, fault, message = WRITE_FAULTS[case]
    raw = write_ot3(tmp_path / "raw", [group_rows("q", ["1", "1", "2"])])
    inputs = {"filter": raw, "stats": write_voted_groups(tmp_path / "voted", {"q": ["1", "1", "2"]})}
    if command == "vote":
        assert run_cli(monkeypatch, capsys, "filter", "-i", raw, "-o", tmp_path / "math")[0] == 0
        inputs["vote"] = tmp_path / "math"
    before = listing(tmp_path)
    monkeypatch.setattr(target, fault)
    code, err = run_cli(monkeypatch, capsys, command, "-i", inputs[command], "-o", tmp_path / "out")
    assert code == 2 and message in one_line(err) and str(tmp_path / "out") in err
    assert listing(tmp_path) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "options, message",
    [("size=64k", "No space left on device"), ("ro,size=64k", "Read-only file system")],
    ids=["full", "read_only"],
)
def test_a_real_small_or_read_only_disk(tmp_path, monkeypatch, capsys, options, message):
    """A 64 KB tmpfs (the sample's raw shards do not fit), or a read-only one. Needs mount rights (root in a
    container); skipped elsewhere, where the injected faults above still run."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        code, err = run_cli(monkeypatch, capsys, "download", "--sample", "-o", mnt / "raw")
        assert code == 2 and message in one_line(err)
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_other_os_errors_keep_their_traceback():
    """Only "cannot write here" errors become one line; anything else is a bug and must show as one."""
    with pytest.raises(FileNotFoundError), output_module.write_errors("out"):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "x")
    quota = "x: Disk quota exceeded; out was not written"
    with pytest.raises(OffcurateError, match=quota), output_module.write_errors("out"):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "x")


# --- 5. invalid UTF-8 -------------------------------------------------------------------------------------


def _invalid(strings: list[str], bad: int) -> pa.Array:
    """A string array whose element ``bad`` holds the byte 0xff (Parquet does not check UTF-8 on write)."""
    raw = [s.encode() for s in strings]
    raw[bad] = raw[bad][:5] + b"\xff" + raw[bad][5:]
    return pa.array(raw, pa.binary()).view(pa.string())


def _bad_raw(folder: Path) -> tuple[int, str]:
    table = pa.Table.from_pylist(group_rows("q", ["1", "1", "2"]) + group_rows("r", ["3"]), OT3_SCHEMA)
    conversations = table.column("conversations").combine_chunks()
    turns = conversations.values
    values = _invalid(turns.field("value").to_pylist(), bad=5)  # row 2's teacher turn
    fixed = pa.ListArray.from_arrays(
        conversations.offsets, pa.StructArray.from_arrays([turns.field("from"), values], ["from", "value"])
    )
    folder.mkdir()
    pq.write_table(table.set_column(3, "conversations", fixed), folder / "a.parquet")
    return 2, "conversations"


def _bad_math(folder: Path) -> tuple[int, str]:
    raw = write_ot3(folder.parent / "good_raw", [group_rows("q", ["1", "1", "2"]) + group_rows("r", ["3"])])
    from offcurate.curate.filter import run_filter

    run_filter(raw, folder.parent / "good_math")
    table = pq.read_table(next((folder.parent / "good_math").glob("*.parquet")))
    column = table.schema.get_field_index("response")
    table = table.set_column(column, "response", _invalid(table.column("response").to_pylist(), bad=3))
    folder.mkdir()
    pq.write_table(table, folder / "a.parquet")
    return 3, "response"


def _bad_voted(folder: Path) -> tuple[int, str]:
    voted = write_voted_groups(folder.parent / "good", {"q": ["1", "1", "2"], "r": ["3", "3"]}, shards=1)
    shard = next((voted / "trajectories").glob("*.parquet"))
    table = pq.read_table(shard)
    column = table.schema.get_field_index("response")
    table = table.set_column(column, "response", _invalid(table.column("response").to_pylist(), bad=4))
    (folder / "trajectories").mkdir(parents=True)
    pq.write_table(table, folder / "trajectories" / "a.parquet")
    return 4, "response"


@pytest.mark.parametrize(
    "command, make, flags",
    [
        ("filter", _bad_raw, []),
        ("vote", _bad_math, ["--workers", "1"]),
        ("train", _bad_voted, ["--model", "tiny-random", "--max-steps", "1"]),
    ],
    ids=["filter", "vote", "train"],
)
def test_invalid_utf8_names_file_row_and_column(tmp_path, monkeypatch, capsys, command, make, flags):
    if command == "train":
        pytest.importorskip("torch")
    row, column = make(tmp_path / "in")
    code, err = run_cli(monkeypatch, capsys, command, "-i", tmp_path / "in", "-o", tmp_path / "out", *flags)
    assert code == 2
    assert f"a.parquet: row {row} (0-based), column '{column}': a string is not valid UTF-8" in one_line(err)
    assert not (tmp_path / "out").exists()
