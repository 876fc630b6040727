"""The closed loop on CPU with a tiny random-init model, every stage through the CLI:

pipeline (embedded sample) -> rollout (base samples) -> stats --base-rollouts (Figure 2) -> sample (mix by
base pass rate) -> train (on the mix) -> eval (base and trained, --model) -> eval --compare.
Numbers are meaningless with random weights; the test checks shapes, counts and that each stage reads the
previous one's output.
"""

import json
import sys

import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from cards import open_every_config  # noqa: E402

from offcurate.cli import main  # noqa: E402
from offcurate.data import SAMPLE_DIR  # noqa: E402

pytestmark = pytest.mark.skipif(
    not list(SAMPLE_DIR.glob("*.parquet")), reason="embedded sample not generated"
)
SAMPLING = ["--model", "tiny-random", "-k", "2", "--max-new-tokens", "8", "--batch-size", "16"]
BENCHMARK = [
    {"problem": "What is 2 + 3?", "answer": "5"},
    {"problem": "What is half of 1?", "answer": "\\frac{1}{2}"},
    {"problem": "How many sides has a hexagon?", "answer": 6},
]


def cli(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["offcurate", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code


def test_rollout_stats_sample_train_eval(tmp_path, monkeypatch):
    demo = tmp_path / "demo"
    assert cli(monkeypatch, "pipeline", "-o", demo, "--workers", "1") == 0
    questions = pl.read_parquet(demo / "voted" / "questions" / "*.parquet")
    all_positive = questions.filter(pl.col("all_positive"))["question_id"].sort().to_list()

    roll = tmp_path / "rollouts"
    assert (
        cli(
            monkeypatch, "rollout", "-i", demo / "voted", "-o", roll, *SAMPLING, "--questions", "all-positive"
        )
        == 0
    )
    samples = pl.read_parquet(roll / "*.parquet")
    assert samples["question_id"].unique().sort().to_list() == all_positive
    assert samples.height == 2 * len(all_positive)

    stats = tmp_path / "stats"
    assert (
        cli(
            monkeypatch, "stats", "-i", demo / "voted", "-o", stats, "--base-rollouts", roll, "--workers", "1"
        )
        == 0
    )
    base = pl.read_parquet(stats / "base_pass_rate.parquet")
    assert base["question_id"].sort().to_list() == all_positive and base["base_samples"].to_list() == [
        2
    ] * len(base)
    figure2 = pl.read_parquet(stats / "figure2.parquet")
    assert figure2["questions"].sum() == len(all_positive)
    assert (stats / "figure2.png").read_bytes()[:4] == b"\x89PNG"

    mix = tmp_path / "mix"
    counts = "hard=3,medium=3,easy=3"
    assert cli(monkeypatch, "sample", "-i", demo / "voted", "-o", mix, "--bucket-by", "base_pass_rate",
               "--base", stats, "--counts", counts) == 0  # fmt: skip
    buckets = pl.read_parquet(mix / "buckets.parquet")
    taken = pl.read_parquet(mix / "questions" / "*.parquet")
    assert buckets["taken"].sum() == taken.height > 0
    assert set(taken["question_id"]) <= set(all_positive)  # only they have a base pass rate

    run = tmp_path / "train"
    small = [
        "--max-steps",
        "1",
        "--questions-per-step",
        "2",
        "--max-len",
        "2048",
        "--tokens-per-micro-batch",
        "4096",
    ]
    assert cli(monkeypatch, "train", "-i", mix, "-o", run, "--model", "tiny-random", *small) == 0
    step = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert step["all_positive_fraction"] == 1.0  # every question of this mix is teacher-all-positive ...
    assert step["loss"] != 0.0  # ... and the bias makes it a learning signal (plain GRPO: A = 0)

    bench = tmp_path / "tiny_bench.jsonl"
    bench.write_text("\n".join(json.dumps(row) for row in BENCHMARK) + "\n")
    for name, model in (("base", run / "tiny-random"), ("trained", run / "final")):
        args = [
            "-b",
            bench,
            *SAMPLING[2:],
            "--model",
            model,
            "-o",
            tmp_path / f"eval-{name}",
            "--workers",
            "1",
        ]
        assert cli(monkeypatch, "eval", *args) == 0
        summary = pl.read_parquet(tmp_path / f"eval-{name}" / "summary.parquet").row(0, named=True)
        assert (summary["benchmark"], summary["problems"]) == ("tiny_bench", 3)
        responses = pl.read_parquet(tmp_path / f"eval-{name}-responses" / "*.parquet")
        assert responses.height == 3 * 2
    assert cli(monkeypatch, "eval", "--compare", tmp_path / "eval-base", tmp_path / "eval-trained",
               "-o", tmp_path / "compare") == 0  # fmt: skip
    assert (tmp_path / "compare" / "radar.png").read_bytes()[:4] == b"\x89PNG"

    # every folder these commands wrote opens by every config its card declares (issue 13, item 1)
    outputs = {
        roll: {"default"},
        stats: {"by_group", "pass_rate_hist", "buckets", "base_pass_rate", "figure2"},
        mix: {"trajectories", "questions", "buckets"},
        tmp_path / "eval-base": {"results", "summary"},
        tmp_path / "eval-trained-responses": {"default"},
        tmp_path / "compare": {"compare"},
    }
    for folder, configs in outputs.items():
        assert set(open_every_config(folder, tmp_path / "datasets-cache")) == configs, folder
