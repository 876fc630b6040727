"""``offcurate experiment`` end to end on CPU: a data kind and a model builder plugged in as the toy task
plugs in (the embedded sample written as raw shards with a benchmark of its own, tiny-random built from
it), two arms, a 3-problem benchmark from the recipe. One straight run is compared with a run
interrupted four times (after the base model is built, mid-sampling of the base rollouts, mid-train after
a checkpoint, mid-sampling of an eval) and started again each time: the resumed run must end with the
same table and the same training losses. A finished run is kept as it is; a changed recipe is refused.
"""

import copy
import json
import re
import shutil
import sys

import polars as pl
import pytest
from cards import open_every_config
from experiment_helpers import PLUGGED, RECIPE, plugged_in, write_recipe

pytest.importorskip("torch")
pytest.importorskip("transformers")

from offcurate.cli import main  # noqa: E402
from offcurate.data import SAMPLE_DIR  # noqa: E402

pytestmark = pytest.mark.skipif(
    not list(SAMPLE_DIR.glob("*.parquet")), reason="embedded sample not generated"
)
STAGES = [
    "data", "curate", "base-model", "base-rollouts", "figure2", "mix", "train/bias", "train/sft",
    "eval/base", "eval/bias", "eval/sft", "teacher-logprobs/base", "teacher-logprobs/bias",
    "teacher-logprobs/sft", "comparison", "effects",
]  # fmt: skip


class Killed(Exception):
    """Stands in for a kill in the middle of a stage (raised from inside the stage's own code)."""


def experiment(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["offcurate", "experiment", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


PLUGGED_RECIPE = {
    **copy.deepcopy(RECIPE),
    "data": {"kind": PLUGGED, "workers": 1, "options": {"problems": 2}},
    "model": PLUGGED,
}


@pytest.fixture(scope="module", autouse=True)
def kinds():
    with pytest.MonkeyPatch.context() as monkeypatch:
        plugged_in(monkeypatch)
        yield


@pytest.fixture(scope="module")
def straight(tmp_path_factory, kinds):
    """The recipe run once, start to finish."""
    root = tmp_path_factory.mktemp("straight")
    recipe = write_recipe(root, PLUGGED_RECIPE)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(sys, "argv", ["offcurate", "experiment", str(recipe), "-o", str(root / "run")])
        with pytest.raises(SystemExit) as exit_info:
            main()
    assert exit_info.value.code == 0
    return root


def table(run):
    return pl.read_parquet(run / "comparison" / "compare.parquet")


def test_straight_run_writes_every_stage_and_one_comparison(straight, tmp_path):
    run = straight / "run"
    record = json.loads((run / "experiment.json").read_text())
    assert record["complete"] and list(record["stages"]) == STAGES
    compared = table(run)
    models = ("base", "bias", "sft")
    # the data kind's own benchmark first, then the recipe's
    assert compared.select("benchmark", "model").rows() == [
        (b, m) for b in ("held_out", "bench") for m in models
    ]
    assert compared["problems"].to_list() == [2] * 3 + [3] * 3
    assert compared["samples"].to_list() == [4] * 3 + [6] * 3
    # the chain checks are measured for every model (a random model never ends its turn in 4 tokens)
    assert compared["end_of_turn"].to_list() == [0.0] * 6
    assert all(0.0 <= share <= 1.0 for share in compared["answered"])
    assert (run / "comparison" / "radar.png").read_bytes()[:4] == b"\x89PNG"
    # every model scored the same teacher traces; the effects table has them in the arms' order
    logprobs = pl.read_parquet(run / "effects" / "teacher_logprobs.parquet")
    assert logprobs["model"].unique(maintain_order=True).to_list() == list(models)
    assert logprobs.group_by("model").agg(pl.col("traces").sum())["traces"].n_unique() == 1
    assert (logprobs["logp_per_token"] < 0).all()
    assert (run / "figure2" / "figure2.png").read_bytes()[:4] == b"\x89PNG"
    for arm in ("bias", "sft"):
        steps = [
            json.loads(line)["step"]
            for line in (run / "train" / arm / "metrics.jsonl").read_text().splitlines()
        ]
        assert steps == [1, 2]
    saved = json.loads((run / "train" / "sft" / "config.json").read_text())
    assert saved["objective"]["loss"] == "sft" and saved["input"] == str((run / "mix").resolve())
    # every intermediate opens as a dataset, by the configs its card declares
    folders = {
        "base-rollouts": {"default"},
        "figure2": {"by_group", "pass_rate_hist", "buckets", "base_pass_rate", "figure2"},
        "mix": {"trajectories", "questions", "buckets"},
        "eval/bias": {"results", "summary"},
        "eval/sft-responses": {"default"},
        "comparison": {"compare"},
        "effects": {"teacher_logprobs"},
        "teacher-logprobs/sft": {"traces", "summary"},
    }
    for folder, configs in folders.items():
        assert set(open_every_config(run / folder, tmp_path / "cache")) == configs, folder


def test_finished_run_is_kept_and_printed_again(straight, monkeypatch, capsys):
    before = table(straight / "run")
    code, err = experiment(monkeypatch, capsys, straight / "recipe.yaml", "-o", straight / "run")
    assert code == 0
    assert "running" not in err and err.count(" kept ") == len(STAGES)
    assert "bench (k = 2)" in err and "Figure 2" in err
    assert table(straight / "run").equals(before)


def test_changed_recipe_is_refused_naming_what_changed(straight, monkeypatch, capsys):
    changed = copy.deepcopy(PLUGGED_RECIPE)
    changed["arms"][0]["train"]["bias"] = 0.0
    changed["eval"]["k"] = 3
    recipe = write_recipe(straight, changed, name="changed.yaml")
    code, err = experiment(monkeypatch, capsys, recipe, "-o", straight / "run")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "arms[0].train.bias: 0.5 -> 0.0" in err and "eval.k: 2 -> 3" in err
    assert "pass --overwrite" in err


def test_interrupted_run_resumes_to_the_same_table(straight, tmp_path, monkeypatch, capsys):
    from offcurate.rollout import parts
    from offcurate.rollout.parts import PartWriter
    from offcurate.train.session import Session

    recipe, run = straight / "recipe.yaml", tmp_path / "run"
    # killed right after base-model: the straight run's first stages and its record of them
    first = ("data", "curate", "base-model")
    for stage in first:
        shutil.copytree(straight / "run" / stage, run / stage)
    record = json.loads((straight / "run" / "experiment.json").read_text())
    record.update(complete=False, stages={k: record["stages"][k] for k in first})
    (run / "experiment.json").write_text(json.dumps(record))
    flush, save = PartWriter.flush, Session.save

    def kill_after_first_batch_of(name):
        def write_then_die(self):
            flush(self)
            if self.folder.name == f".{name}.partial" and self.count:
                raise Killed(name)

        return write_then_die

    def save_then_die(self):
        save(self)
        if self.cfg.output.name == "bias" and self.step == 1:
            raise Killed("train/bias")

    for where, fault in [
        ("base-rollouts", ("flush", kill_after_first_batch_of("base-rollouts"))),
        ("train/bias", ("save", save_then_die)),
        ("eval/base-responses", ("flush", kill_after_first_batch_of("base-responses"))),
    ]:
        with monkeypatch.context() as patch:
            patch.setattr(parts, "FLUSH_ROWS", 1)  # a part file per finished question
            patch.setattr(PartWriter if fault[0] == "flush" else Session, fault[0], fault[1])
            with pytest.raises(Killed, match=where.split("/")[-1]):
                experiment(patch, capsys, recipe, "-o", run)
        assert not json.loads((run / "experiment.json").read_text())["complete"]
        if where == "train/bias":  # killed after its first checkpoint, before its last step
            assert (run / "train" / "bias" / "checkpoint-000001").is_dir()
            assert not (run / "train" / "bias" / "final").exists()

    code, err = experiment(monkeypatch, capsys, recipe, "-o", run)
    assert code == 0, err
    status = dict(re.findall(r"^│ (\S+)\s+│ (kept|ran|resumed)\s+│", err, flags=re.MULTILINE))
    assert list(status) == STAGES
    assert status["curate"] == status["train/bias"] == "kept" and status["eval/base"] == "resumed"
    assert status["eval/bias"] == status["comparison"] == status["effects"] == "ran"
    assert table(run).equals(table(straight / "run"))
    effects = [pl.read_parquet(r / "effects" / "teacher_logprobs.parquet") for r in (run, straight / "run")]
    assert effects[0].equals(effects[1])
    # the same samples, text for text: the resumed train ended on the same weights, and a resumed
    # sampling run drew the batches it had not written with the seeds the straight run used
    for folder in ("base-rollouts", "eval/base-responses", "eval/bias-responses", "eval/sft-responses"):
        samples = [
            pl.read_parquet(r / folder / "*.parquet").sort("question_id", "sample_idx")
            for r in (run, straight / "run")
        ]
        assert samples[0].equals(samples[1]), folder
    resumed = [
        json.loads(line) for line in (run / "train" / "bias" / "metrics.jsonl").read_text().splitlines()
    ]
    straight_rows = (straight / "run" / "train" / "bias" / "metrics.jsonl").read_text().splitlines()
    assert [(r["step"], r["loss"]) for r in resumed] == [
        (r["step"], r["loss"]) for r in map(json.loads, straight_rows)
    ]
