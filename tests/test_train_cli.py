"""`offcurate train` end to end on a hand-built vote output: it learns, logs, checkpoints, fails cleanly."""

import json
import sys

import pytest
import torch
from train_helpers import write_voted
from typer.testing import CliRunner

from offcurate.cli import app, main

COMMON = ["--model", "tiny-random", "--max-len", "512", "--tokens-per-micro-batch", "512", "--device", "cpu"]
METRIC_KEYS = {
    "step", "loss", "mean_advantage", "all_positive_fraction", "grad_norm", "lr", "tokens_per_s", "mfu",
    "peak_memory_gib", "questions", "trajectories", "tokens", "kl", "dropped_long",
}  # fmt: skip


def _train(tmp_path, name, *args):
    voted = tmp_path / "voted"
    if not voted.exists():
        write_voted(voted)
    out = tmp_path / name
    result = CliRunner().invoke(app, ["train", "-i", str(voted), "-o", str(out), *COMMON, *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return out, rows


def test_train_learns_logs_and_checkpoints(tmp_path):
    from transformers import AutoModelForCausalLM

    args = ["--max-steps", "6", "--questions-per-step", "3", "--no-shuffle", "--lr", "3e-3"]
    out, rows = _train(tmp_path, "run", *args, "--warmup-steps", "1", "--save-every", "3")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0].keys() >= METRIC_KEYS
    # every step sees the same 3 ok questions (12 traces), one of them all-positive: mean A = 0.5·4/12
    assert all(r["questions"] == 3 and r["trajectories"] == 12 for r in rows)
    assert rows[0]["all_positive_fraction"] == pytest.approx(1 / 3)
    assert rows[0]["mean_advantage"] == pytest.approx(0.5 * 4 / 12)
    assert rows[-1]["loss"] < rows[0]["loss"] - 1e-3  # same data every step: the loss must go down
    assert rows[0]["mfu"] is None and rows[0]["kl"] is None
    assert {p.name for p in out.iterdir()} >= {"config.json", "checkpoint-000006", "final", "summary.json"}

    final = AutoModelForCausalLM.from_pretrained(out / "final")
    start = AutoModelForCausalLM.from_pretrained(out / "tiny-random")
    last = AutoModelForCausalLM.from_pretrained(out / "checkpoint-000006")
    final_sd, start_sd, last_sd = final.state_dict(), start.state_dict(), last.state_dict()
    assert all(torch.equal(final_sd[k], last_sd[k]) for k in final_sd)
    assert not all(torch.equal(final_sd[k], start_sd[k]) for k in final_sd)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["steps"] == 6
    assert summary["dropped"] == {
        "question status tie (null reward)": 1,
        "question status no_answer (null reward)": 1,
    }


VARIANTS = {
    # no bias: the all-positive question has A = 0 everywhere, so its 4 traces are never run
    "bias_0_plain_grpo": (
        ["--bias", "0"],
        lambda r: r["trajectories"] == 8 and abs(r["mean_advantage"]) < 1e-9,
    ),
    # sft: only the 3 + 4 + 2 positive traces (majority answers 5, 6 and 8)
    "sft_positives_only": (["--loss", "sft"], lambda r: r["trajectories"] == 9 and r["loss"] > 0),
    "luffy_shaping": (["--shaping", "luffy"], lambda r: r["trajectories"] == 12),
    # step 1: the policy is the reference (KL 0); step 2: it moved away
    "kl_with_reference": (["--beta", "0.1"], lambda r: r["kl"] == 0 if r["step"] == 1 else r["kl"] > 0),
    "no_checkpointing_bf16": (["--no-gradient-checkpointing", "--dtype", "bf16"], lambda r: r["loss"] != 0),
}


def test_run_shorter_than_warmup_warns(tmp_path):
    # default --warmup-steps 10 over a 2-step run: the LR climbs to 2/10 of --lr and stops there
    voted = tmp_path / "voted"
    write_voted(voted)
    args = [
        "train",
        "-i",
        str(voted),
        "-o",
        str(tmp_path / "run"),
        *COMMON,
        "--max-steps",
        "2",
        "--lr",
        "1e-3",
    ]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "warning: --warmup-steps 10 is longer than the run (2 steps)" in result.output
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == pytest.approx([1e-4, 2e-4])


@pytest.mark.parametrize("args, check", list(VARIANTS.values()), ids=list(VARIANTS))
def test_objective_variants(tmp_path, args, check):
    base = ["--max-steps", "2", "--questions-per-step", "3", "--lr", "1e-2", "--warmup-steps", "0"]
    _, rows = _train(tmp_path, "run", *base, *args)
    assert len(rows) == 2 and all(check(r) for r in rows), rows


def _cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["offcurate", "train", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, capsys.readouterr().err


BAD = {
    "missing_folder": (False, [], "no such file or folder"),
    "micro_batch_below_max_len": (True, ["--tokens-per-micro-batch", "100"], "--tokens-per-micro-batch"),
    "eps_out_of_range": (True, ["--eps", "1.5"], "eps must be in [0, 1)"),
    "sft_ignores_shaping": (True, ["--loss", "sft", "--shaping", "luffy"], "--loss sft ignores --shaping"),
    "resume_without_run": (True, ["--resume"], "config.json: missing"),
    "every_trace_too_long": (True, ["--max-len", "20", "--max-steps", "1"], "no trainable trajectory"),
    # the run folder is made before the model loads: a fresh run that fails removes it again
    "model_folder_empty": (True, lambda tmp: ["--model", str(_folder(tmp))], "model: cannot load it ("),
    "model_not_causal_lm": (
        True,
        lambda tmp: ["--model", str(_folder(tmp, '{"model_type": "t5"}'))],
        "Unrecognized configuration class",
    ),
    "max_len_above_model_positions": (
        True,
        ["--max-len", "40000", "--tokens-per-micro-batch", "40000"],
        "--max-len 40000 is above the model's max_position_embeddings 32768",
    ),
}


def _folder(tmp_path, config: str | None = None):
    """A --model folder holding the tiny tokenizer (when ``config`` is given) and that config.json."""
    folder = tmp_path / "model"
    folder.mkdir()
    if config is not None:
        from offcurate.train.tiny import build_tokenizer

        build_tokenizer().save_pretrained(folder)
        (folder / "config.json").write_text(config)
    return folder


@pytest.mark.parametrize("make, extra, message", list(BAD.values()), ids=list(BAD))
def test_bad_usage_is_one_line_exit_2(tmp_path, monkeypatch, capsys, make, extra, message):
    voted = tmp_path / "voted"
    if make:
        write_voted(voted)
    extra = extra(tmp_path) if callable(extra) else extra
    code, err = _cli(monkeypatch, capsys, "-i", str(voted), "-o", str(tmp_path / "out"), *COMMON, *extra)
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
