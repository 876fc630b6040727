"""Every command's ``--help`` reads at 80 columns, and numeric options out of range are one line, exit 2.

At 80 columns rich shrinks a table's widest column first; before the help panels, `train --help` ran to
259 lines with a 16-character description column and option names cut to ``--tokens-per-m…``.
"""

import re
import sys

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from offcurate.cli import app, main

ROOT = typer.main.get_command(app)
COMMANDS = sorted(ROOT.commands)
ROW_NAMES = re.compile(r"^│ (?:\*\s+)?(--[\w-]+)(?:\s+(-\w))?(?:\s+(--[\w-]+))?", flags=re.MULTILINE)


def help_at(columns: int, *command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def long_names(command: click.Command) -> set[str]:
    return {
        name
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden
        for name in [*param.opts, *param.secondary_opts]
        if name.startswith("--")
    }


def test_every_command_is_listed():
    assert set(COMMANDS) == {
        "download", "filter", "vote", "stats", "pipeline", "rollout", "sample", "train", "eval", "experiment",
    }  # fmt: skip


def test_top_level_help_names_every_command_whole():
    text = help_at(80)
    assert "…" not in text
    assert set(re.findall(r"^│ (\w+) ", text, flags=re.MULTILINE)) == set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_no_option_name_is_cut_at_80_columns(name):
    text = help_at(80, name)
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= 80
    first_column = {n for row in ROW_NAMES.findall(text) for n in row if n.startswith("--")}
    assert long_names(ROOT.commands[name]) <= first_column, text


def test_train_help_groups_options_in_panels():
    text = help_at(80, "train")
    panels = re.findall(r"^╭─ (\w+) ─", text, flags=re.MULTILINE)
    assert panels == ["Options", "Objective", "Schedule", "Data", "Engine", "Output", "LoRA"]
    # every line of the description column holds more than a word or two (it held 16 characters)
    assert "│ --tokens-per-micro-batch " in text
    assert len(text.splitlines()) < 155  # 259 before the panels; LoRA and --report-to add ~20, --reward 4


def run_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["offcurate", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


OUT_OF_RANGE = {
    "vote_timeout_0": (["vote", "--timeout", "0"], "--timeout must be > 0, got 0"),
    "vote_timeout_negative": (["vote", "--timeout", "-1"], "--timeout must be > 0, got -1"),
    "vote_workers_0": (["vote", "--workers", "0"], "--workers must be at least 1, got 0"),
    "vote_workers_negative": (["vote", "--workers", "-2"], "--workers must be at least 1, got -2"),
    "vote_num_shards_0": (["vote", "--num-shards", "0"], "--num-shards must be at least 1, got 0"),
    "stats_timeout_0": (["stats", "--timeout", "0"], "--timeout must be > 0"),
    "stats_workers_0": (["stats", "--workers", "0"], "--workers must be at least 1"),
    "pipeline_timeout_0": (["pipeline", "--timeout", "0"], "--timeout must be > 0"),
    "pipeline_workers_0": (["pipeline", "--workers", "0"], "--workers must be at least 1"),
    "rollout_limit_0": (["rollout", "--model", "tiny-random", "--limit", "0"], "--limit must be at least 1"),
    "rollout_batch_size_0": (
        ["rollout", "--model", "tiny-random", "--batch-size", "0"], "--batch-size must be at least 1",
    ),
    "sample_questions_0": (["sample", "--weights", "easy=1", "--questions", "0"], "--questions must be at"),
    "sample_max_per_question_negative": (
        ["sample", "--max-per-question", "-1"], "--max-per-question must be at least 1, got -1",
    ),
    "eval_timeout_0": (["eval", "-b", "x.jsonl", "-r", "r", "--timeout", "0"], "--timeout must be > 0"),
    "eval_workers_0": (["eval", "-b", "x.jsonl", "-r", "r", "--workers", "0"], "--workers must be at least"),
    "eval_batch_size_0": (
        ["eval", "-b", "x.jsonl", "--model", "tiny-random", "--batch-size", "0"], "--batch-size must be",
    ),
}  # fmt: skip


@pytest.mark.parametrize("args, message", list(OUT_OF_RANGE.values()), ids=list(OUT_OF_RANGE))
def test_out_of_range_option_is_one_line_exit_2(tmp_path, monkeypatch, capsys, args, message):
    # checked before any input is read: the input folders need not exist, and nothing is written
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(monkeypatch, capsys, *args, "-o", str(tmp_path / "out"))
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def _questions(tmp_path):
    pq.write_table(pa.table({"question": ["What is 1+1?"]}), tmp_path / "q.parquet")
    return ["-i", str(tmp_path / "q.parquet"), "--questions", "all"]


def _benchmark(tmp_path):
    (tmp_path / "b.jsonl").write_text('{"question": "What is 1+1?", "answer": "2"}\n')
    return ["-b", str(tmp_path / "b.jsonl")]


@pytest.mark.parametrize(
    "command, inputs",
    [("train", lambda tmp: ["-i", str(tmp)]), ("rollout", _questions), ("eval", _benchmark)],
    ids=["train", "rollout", "eval_model"],
)
def test_missing_torch_names_both_ways_to_install(tmp_path, monkeypatch, capsys, command, inputs):
    monkeypatch.setitem(sys.modules, "torch", None)
    args = [command, *inputs(tmp_path), "--model", "tiny-random", "-o", str(tmp_path / "out")]
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "needs torch and transformers" in err and len(err.strip().splitlines()) == 1
    flat = " ".join(err.split())  # the console wraps long lines softly
    assert 'pip install -e ".[train]"' in flat and "pip install 'offcurate[train]'" in flat
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in flat
    assert not (tmp_path / "out").exists()
