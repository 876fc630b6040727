"""What a user meets around `train`, `rollout` and `eval` (issue 22): plain progress lines in a log file,
a LoRA run's final/ usable from anywhere, a benchmark question given twice, flags in --help.

    python -m pytest -q tests/test_usage_faults.py

Before: under Slurm or nohup, `rollout` and `eval --model` printed nothing for hours (rich hides its live
view without a terminal) and `train` printed steps without a rate or ETA; a LoRA adapter stored its base
as the relative path the run was started with, and `eval --model RUN/final` said "Unrecognized model";
`eval` scored a repeated question twice ("problems 2, responses 4"); every flag showed `<bool>`. The
commands run in-process; under pytest's capture stderr is no terminal, as under nohup or Slurm.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from train_helpers import write_voted
from typer.testing import CliRunner

from offcurate.cli import app, main
from offcurate.curate.io.ids import question_id

TRAIN = [
    "--model", "tiny-random", "--device", "cpu", "--max-len", "512", "--tokens-per-micro-batch", "512",
    "--questions-per-step", "2", "--warmup-steps", "0", "--lr", "1e-2", "--save-every", "0",
]  # fmt: skip
SAMPLE = ["-k", "1", "--max-new-tokens", "4", "--device", "cpu", "--batch-size", "4"]
PLAIN = r"{what}\s+(\d+)/(\d+) \(\d+%\)\s+[\d.]+ (it/s|s/it)\s+elapsed \d+:\d\d:\d\d\s+ETA \d+:\d\d:\d\d"


@pytest.fixture(scope="module")
def voted(tmp_path_factory) -> Path:
    return write_voted(tmp_path_factory.mktemp("data") / "voted")


def benchmark(folder: Path, questions: list[tuple[str, str]], name: str = "toy") -> Path:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in questions))
    return path


def cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    """``offcurate ARGS`` in-process: (exit code, stderr); every progress update prints its plain line."""
    monkeypatch.setenv("OFFCURATE_PROGRESS_SECONDS", "0")
    monkeypatch.setattr(sys, "argv", ["offcurate", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, capsys.readouterr().err


# --- plain progress lines without a terminal --------------------------------------------------------------


def plain_lines(stderr: str, what: str) -> list[tuple[int, int]]:
    return [(int(m.group(1)), int(m.group(2))) for m in re.finditer(PLAIN.format(what=what), stderr)]


def test_train_prints_progress_lines_with_rate_and_eta(tmp_path, monkeypatch, capsys, voted):
    code, err = cli(
        monkeypatch, capsys, "train", "-i", voted, "-o", tmp_path / "run", *TRAIN, "--max-steps", "3"
    )
    assert code == 0, err
    assert plain_lines(err, "train") == [(1, 3), (2, 3), (3, 3)], err


def test_rollout_prints_progress_lines(tmp_path, monkeypatch, capsys):
    questions = {"question": ["What is 1+1?", "What is 2+2?", "What is 3+3?"]}
    pq.write_table(pa.table(questions), tmp_path / "questions.parquet")
    code, err = cli(
        monkeypatch, capsys, "rollout", "-i", tmp_path / "questions.parquet", "-o", tmp_path / "samples",
        "--model", "tiny-random", "--questions", "all", *SAMPLE[:-2], "--batch-size", "1",
    )  # fmt: skip
    assert code == 0, err
    assert plain_lines(err, r"rollout: [\d,]+ tok/s") == [(1, 3), (2, 3), (3, 3)], err


def test_eval_model_prints_progress_lines(tmp_path, monkeypatch, capsys):
    bench = benchmark(tmp_path, [("What is 1+1?", "2"), ("What is 2+2?", "4")])
    code, err = cli(
        monkeypatch, capsys, "eval", "-b", bench, "--model", "tiny-random", "-o", tmp_path / "ev", *SAMPLE,
        "--workers", "1",
    )  # fmt: skip
    assert code == 0, err
    assert plain_lines(err, r"rollout: [\d,]+ tok/s")[-1] == (2, 2), err
    assert plain_lines(err, "eval: score")[-1] == (2, 2), err


def test_a_plain_line_says_rate_and_eta():
    from offcurate.curate.io.report import plain_line

    assert (
        plain_line("rollout", 120, 500, 100, 50.0)
        == "rollout  120/500 (24%)  2.00 it/s  elapsed 0:00:50  ETA 0:03:10"
    )
    assert plain_line("train", 2, 10, 2, 600.0, "loss +0.1") == (
        "train  2/10 (20%)  300.00 s/it  elapsed 0:10:00  ETA 0:40:00  loss +0.1"
    )


# --- a LoRA run's final/ ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, voted) -> Path:
    """A LoRA run started with a relative -o from its own working directory."""
    pytest.importorskip("peft")
    start = tmp_path_factory.mktemp("lora-start")
    argv = [
        "offcurate",
        "train",
        "-i",
        str(voted),
        "-o",
        "runs/lora",
        *TRAIN,
        "--max-steps",
        "2",
        "--lora-r",
        "4",
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(start)
        mp.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as info:
            main()
    assert info.value.code == 0
    return start / "runs" / "lora"


def test_adapter_stores_an_absolute_base(lora_run):
    base = json.loads((lora_run / "final" / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert Path(base).is_absolute() and Path(base) == (lora_run / "tiny-random").resolve()


@pytest.mark.parametrize("moved", [False, True], ids=["in_place", "run_folder_moved"])
def test_eval_loads_an_adapter_on_its_base_from_anywhere(tmp_path, monkeypatch, capsys, lora_run, moved):
    run = lora_run
    if moved:  # its recorded base is gone with it: the base beside final/ (RUN/tiny-random) is used
        run = shutil.copytree(lora_run, tmp_path / "elsewhere" / "lora")
        shutil.move(lora_run / "tiny-random", tmp_path / "parked")
    monkeypatch.chdir(tmp_path)  # not where the run was started
    bench = benchmark(tmp_path, [("What is 1+1?", "2")])
    try:
        code, err = cli(
            monkeypatch, capsys, "eval", "-b", bench, "--model", run / "final", "-o", "ev", *SAMPLE,
            "--workers", "1",
        )  # fmt: skip
    finally:
        if moved:
            shutil.move(tmp_path / "parked", lora_run / "tiny-random")
    assert code == 0, err
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["benchmarks"][0]["scored"] == 1


def test_an_adapter_without_its_base_says_to_use_final_merged(tmp_path, monkeypatch, capsys, lora_run):
    adapter = tmp_path / "adapter"
    shutil.copytree(lora_run / "final", adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone" / "tiny-random")
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    bench = benchmark(tmp_path, [("What is 1+1?", "2")])
    code, err = cli(
        monkeypatch, capsys, "eval", "-b", bench, "--model", adapter, "-o", tmp_path / "ev", *SAMPLE
    )
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "final-merged/" in errors[0] and "Traceback" not in err, err


@pytest.mark.parametrize("asked", ["auto", "vllm"])
def test_vllm_is_not_handed_an_adapter(lora_run, asked):
    """vLLM loads whole models: `auto` samples an adapter with transformers, `--backend vllm` says what to
    give instead (whether vLLM is installed here or not: the choice is made on what was picked)."""
    from offcurate.curate.io.errors import OffcurateError
    from offcurate.rollout.plan import backend_for_model

    adapter, whole = str(lora_run / "final"), str(lora_run / "tiny-random")
    assert backend_for_model(whole, asked, "vllm") == "vllm"
    assert backend_for_model(adapter, asked, "transformers") == "transformers"
    if asked == "auto":
        assert backend_for_model(adapter, asked, "vllm") == "transformers"
    else:
        with pytest.raises(OffcurateError, match="a LoRA adapter; --backend vllm .* RUN/final-merged/"):
            backend_for_model(adapter, asked, "vllm")


# --- eval: a question given twice ------------------------------------------------------------------------


def test_a_question_given_twice_is_one_problem(tmp_path, monkeypatch, capsys):
    questions = [("What is 1+1?", "2"), ("What is 2+2?", "4"), ("What is 1+1?", "2")]
    bench = benchmark(tmp_path, questions)
    rows = [
        {"question_id": question_id(q), "sample_idx": i, "response": f"$\\boxed{{{a if i else 5}}}$"}
        for q, a in questions[:2]
        for i in range(2)
    ]
    (tmp_path / "responses").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "responses" / "train-00000.parquet")
    responses, out = tmp_path / "responses", tmp_path / "ev"
    code, err = cli(monkeypatch, capsys, "eval", "-b", bench, "-r", responses, "-o", out, "--workers", "1")
    assert code == 0, err
    results = pl.read_parquet(tmp_path / "ev" / "results.parquet")
    assert results.height == 2 and results["samples"].to_list() == [2, 2]
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["benchmarks"][0]["problems"] == 2 and summary["benchmarks"][0]["pass_at_1"] == 0.5
    assert summary["repeated_questions"] == {"toy": 1}
    assert "dropped: repeated benchmark question" in err  # the report says what was folded


# --- --help -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["", *sorted(typer.main.get_command(app).commands)])
def test_flags_show_no_value_in_help(command):
    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert re.search(r"--help\s+Show this message and exit", result.output)
