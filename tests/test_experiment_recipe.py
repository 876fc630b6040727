"""``offcurate experiment`` recipes: every kind of bad key or value is one line and exit 2; the embedded
recipes load; an arm's options reach `offcurate train` the same in-process and under torchrun."""

import copy
import re
import sys

import pytest
import yaml
from experiment_helpers import RECIPE, write_recipe
from test_cli_errors import run_cli

pytest.importorskip("torch")

from offcurate.cli import main  # noqa: E402
from offcurate.experiment.recipe import list_recipes, load_recipe  # noqa: E402
from offcurate.experiment.train_options import (  # noqa: E402
    check_train_options,
    train_argv,
    train_kwargs,
)


def edited(path: str, value):
    """RECIPE with ``value`` at ``path`` (``arms.1.train.bias``; value DELETE removes the key)."""
    recipe = copy.deepcopy(RECIPE)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = recipe
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return recipe


DELETE = object()
# case -> (recipe, the one line expected after "error: recipe.yaml: ")
CASES = {
    "unknown_key_did_you_mean": (
        edited("arms.1.train.bais", 0),
        "arms[1].train.bais: unknown key (did you mean 'bias'?)",
    ),
    "unknown_section": (edited("evaluation", {}), "evaluation: unknown key (did you mean 'eval'?)"),
    "unknown_sampling_key": (edited("eval.topp", 0.9), "eval.topp: unknown key (did you mean 'top_p'?)"),
    "wrong_type_train_option": (
        edited("arms.1.train.bias", "high"),
        "arms[1].train.bias: expected a number, got 'high' (text)",
    ),
    "wrong_type_section": (edited("eval.k", "four"), "eval.k: expected an integer, got 'four' (text)"),
    "wrong_type_list": (edited("arms", {"name": "a"}), "arms: expected a list, got a mapping"),
    "bool_is_not_a_number": (edited("seed", True), "seed: expected an integer, got True (a boolean)"),
    "out_of_range": (edited("eval.k", 0), "eval.k: must be >= 1, got 0 (an integer)"),
    "out_of_range_share": (edited("eval.top_p", 1.5), "eval.top_p: must be in (0, 1], got 1.5 (a number)"),
    "out_of_range_engine": (
        edited("eval.gpu_memory_utilization", 1.5),
        "eval.gpu_memory_utilization: must be in (0, 1], got 1.5 (a number)",
    ),
    "out_of_range_trainer": (edited("arms.0.train.lr", -1.0), "arms[0].train.lr: --lr must be in (0, 1]"),
    "out_of_range_shared_train": (edited("train.max_steps", 0), "train.max_steps: --max-steps must be >= 1"),
    "objective_conflict": (
        edited("arms.1.train.eps", 0.3),
        "arms[1].train.eps: --loss sft ignores --eps: leave it at its default",
    ),
    "enum_choice": (
        edited("arms.0.train.loss", "ppo"),
        "arms[0].train.loss: must be one of off-grpo, sft, got 'ppo' (text)",
    ),
    "choice": (edited("mix.bucket_by", "teacher"), "mix.bucket_by: must be one of pass_rate, vote_share"),
    "missing_required": (edited("model", DELETE), "model: missing (required)"),
    "missing_arm_name": (edited("arms.0.name", DELETE), "arms[0].name: missing (required)"),
    "set_by_experiment": (edited("arms.0.train.output", "x"), "arms[0].train.output: set by the experiment"),
    "unknown_data_kind": (
        edited("data.kind", "hub"),
        "data.kind: unknown kind 'hub' (one of sample, raw, voted",
    ),
    "path_needed": (edited("data.kind", "voted"), "data.path: missing (required by kind voted"),
    "duplicate_arm": (edited("arms.1.name", "bias"), "arms[1].name: 'bias' is also arms[0]'s name"),
    "reserved_arm_name": (
        edited("arms.0.name", "base"),
        "arms[0].name: 'base' is reserved for the base model",
    ),
    "mix_needs_rollouts": (
        edited("base_rollouts", DELETE),
        "mix.bucket_by: base_pass_rate needs a `base_rollouts` section",
    ),
    "toy_option_misspelt": (
        {**edited("data.kind", "toy"), "data": {"kind": "toy", "options": {"train_per_skil": 10}}},
        "data.options.train_per_skil: unknown key (did you mean 'train_per_skill'?)",
    ),
    "toy_option_wrong_type": (
        {**edited("data.kind", "toy"), "data": {"kind": "toy", "options": {"traces": "many"}}},
        "data.options.traces: expected an integer, got 'many' (text)",
    ),
    "toy_options_that_do_not_fit": (
        {**edited("data.kind", "toy"), "data": {"kind": "toy", "options": {"min_wrong": 5}}},
        "data.options: kind toy: need 0 < min_wrong <= max_wrong < traces / 2",
    ),
    "toy_share_nan": (
        {
            **edited("data.kind", "toy"),
            "data": {"kind": "toy", "options": {"warmup_long_share": float("nan")}},
        },
        "data.options: kind toy: need 0 <= warmup_long_share <= 1, got nan",
    ),
    "toy_size_zero": (
        {**edited("data.kind", "toy"), "data": {"kind": "toy", "options": {"bench_per_skill": 0}}},
        "data.options: kind toy: need bench_per_skill >= 1, got 0",
    ),
    "toy_model_needs_toy_data": (
        edited("model", "toy"),
        "model: toy is built from data kind toy: set data.kind: toy",
    ),
    "teacher_logprobs_range": (
        edited("teacher_logprobs", {"questions": 0}),
        "teacher_logprobs.questions: must be >= 1, got 0 (an integer)",
    ),
    "missing_benchmark": (
        edited("eval.benchmarks", ["bench.jsonl", "nope.jsonl"]),
        "eval.benchmarks[1]: ",  # then the resolved path: checked below
    ),
}


@pytest.mark.parametrize("recipe, message", CASES.values(), ids=CASES.keys())
def test_recipe_error_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, recipe, message):
    path = write_recipe(tmp_path, recipe)
    code, err = run_cli(
        monkeypatch, capsys, "experiment", str(path), "-o", str(tmp_path / "run"), "--dry-run"
    )
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {path}: {message}"), lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("model: a\narms: [\n", "recipe.yaml:3:1: not valid YAML"),
        ("model: a\nmodel: b\n", "recipe.yaml:2:1: not valid YAML: duplicate key 'model' (line 2)"),
        ("- just\n- a list\n", "recipe.yaml: recipe: expected a mapping of keys, got a list"),
    ],
    ids=["syntax", "duplicate_key", "not_a_mapping"],
)
def test_yaml_problems_are_one_line(tmp_path, monkeypatch, capsys, text, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    code, err = run_cli(monkeypatch, capsys, "experiment", str(path), "-o", str(tmp_path / "run"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {tmp_path}/{message}"), err


def test_missing_benchmark_names_the_path_and_the_option(tmp_path):
    path = write_recipe(tmp_path, edited("eval.benchmarks", ["nope.jsonl"]))
    with pytest.raises(
        Exception, match=r"eval.benchmarks\[0\]: .*/nope.jsonl: no such file \(point --benchmarks-dir"
    ):
        load_recipe(str(path))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "nope.jsonl").write_text("{}\n")
    recipe = load_recipe(str(path), benchmarks_dir=tmp_path / "elsewhere")
    assert recipe.eval.benchmarks == [str(tmp_path / "elsewhere" / "nope.jsonl")]


def test_yaml_reads_exponents_as_numbers(tmp_path):
    """PyYAML (YAML 1.1) reads 1e-6 as text; a recipe's learning rate is a number."""
    path = write_recipe(tmp_path)
    path.write_text(path.read_text().replace("lr: 0.001", "lr: 1e-6"))
    assert load_recipe(str(path)).train["lr"] == 1e-6


def test_embedded_recipes_are_listed_and_load(tmp_path, monkeypatch, capsys):
    code, err = run_cli(monkeypatch, capsys, "experiment", "--list")
    names = list_recipes()
    assert code == 0 and {"toy", "seed-1.5b"} <= set(names)
    assert all(f"{name}  {description}" in err for name, description in names.items())
    monkeypatch.chdir(tmp_path)  # an embedded recipe's data.path is read from the working directory
    (tmp_path / "data" / "raw").mkdir(parents=True)
    for name in ("math500", "aime24", "amc23", "minerva_math"):
        (tmp_path / f"{name}.jsonl").write_text("{}\n")
    for name in names:
        recipe = load_recipe(name, benchmarks_dir=tmp_path)
        assert recipe.arms and recipe.description
    seed = load_recipe("seed-1.5b", benchmarks_dir=tmp_path)
    assert seed.model == "Qwen/Qwen2.5-1.5B-Instruct"
    assert {a.name: seed.arm_options(a).get("bias", 0.5) for a in seed.arms} == {
        "bias": 0.5,
        "no-bias": 0.0,
        "sft": 0.5,  # SFT reads no bias: it stays at the default
    }
    assert [seed.arm_options(a).get("loss", "off-grpo") for a in seed.arms] == ["off-grpo", "off-grpo", "sft"]
    assert all(seed.arm_options(a).get("eps", 0.2) == 0.2 for a in seed.arms)
    assert [str(p).rsplit("/", 1)[1] for p in seed.eval.benchmarks] == [
        "math500.jsonl",
        "aime24.jsonl",
        "amc23.jsonl",
        "minerva_math.jsonl",
    ]


def test_show_prints_the_embedded_recipe(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["offcurate", "experiment", "toy", "--show"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0
    assert [arm["name"] for arm in yaml.safe_load(capsys.readouterr().out)["arms"]] == [
        "bias",
        "no-bias",
        "sft",
    ]


def test_torchrun_flags_parse_back_to_the_in_process_arguments():
    """An arm under torchrun gets, through `offcurate train`'s parser, exactly the keyword arguments the
    in-process call passes: every option kind (number, optional, enum, flag, text)."""
    import typer

    from offcurate.train.command import train

    options = check_train_options(
        {
            "bias": 0,
            "loss": "off-grpo",
            "max_steps": 3,
            "lora_alpha": None,
            "no_shuffle": True,
            "dtype": "bf16-mixed",
            "report_to": "none",
            "lr": 1e-5,
        },  # fmt: skip
        "train",
    )
    app = typer.Typer()
    app.command()(train)
    command = typer.main.get_command(app)
    argv = ["--model", "m", *train_argv(options)]
    parsed = command.make_context("train", argv).params
    assert {k: parsed[k] for k in options} == train_kwargs(options)
    assert train_argv(check_train_options({"no_shuffle": False}, "train")) == []


def test_dry_run_prints_each_stage_as_its_command(tmp_path, monkeypatch, capsys):
    recipe = edited("arms.1.nproc", 2)
    path = write_recipe(tmp_path, recipe)
    code, err = run_cli(
        monkeypatch, capsys, "experiment", str(path), "-o", str(tmp_path / "run"), "--dry-run"
    )
    assert code == 0 and not (tmp_path / "run").exists()
    stages = re.findall(r"^\s*\d+\. (\S+)  (.*)$", err, flags=re.MULTILINE)
    assert [name for name, _ in stages] == [
        "curate", "base-model", "base-rollouts", "figure2", "mix", "train/bias", "train/sft",
        "eval/base", "eval/bias", "eval/sft", "teacher-logprobs/base", "teacher-logprobs/bias",
        "teacher-logprobs/sft", "comparison", "effects",
    ]  # fmt: skip
    commands = dict(stages)
    run = tmp_path.resolve() / "run"
    assert commands["curate"] == f"offcurate pipeline -o {run}/curate --timeout 2.0"  # the embedded sample
    assert commands["train/bias"].startswith(f"offcurate train -i {run}/mix -o {run}/train/bias --model ")
    assert "--bias 0.5" in commands["train/bias"] and "--attn varlen" in commands["train/bias"]
    assert commands["train/sft"].startswith("torchrun --standalone --nproc-per-node 2 -m offcurate train ")
    assert commands["eval/sft"].startswith(f"offcurate eval -b {tmp_path.resolve()}/bench.jsonl --model ")
    assert f"--model {run}/train/sft/final" in commands["eval/sft"]


def test_engine_options_reach_the_sampling_commands(tmp_path, monkeypatch, capsys):
    """A GPU node's recipe samples on every GPU: engine options are spelled as rollout/eval take them."""
    recipe = edited("eval.data_parallel_size", 2)
    recipe["eval"]["max_model_len"] = 4096
    recipe["base_rollouts"]["tensor_parallel_size"] = 2
    path = write_recipe(tmp_path, recipe)
    code, err = run_cli(
        monkeypatch, capsys, "experiment", str(path), "-o", str(tmp_path / "run"), "--dry-run"
    )
    assert code == 0, err
    commands = dict(re.findall(r"^\s*\d+\. (\S+)  (.*)$", err, flags=re.MULTILINE))
    assert "--data-parallel-size 2 --max-model-len 4096" in commands["eval/base"]
    assert "--tensor-parallel-size 2" in commands["base-rollouts"]
    assert "parallel-size" not in commands["eval/bias"].replace("--data-parallel-size 2", "")


def test_a_folder_that_is_not_an_experiment_is_never_used(tmp_path, monkeypatch, capsys):
    path = write_recipe(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        code, err = run_cli(monkeypatch, capsys, "experiment", str(path), "-o", str(tmp_path / "run"), *extra)
        assert code == 2 and "is not an offcurate experiment" in err, err
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_differences_name_every_changed_leaf():
    from offcurate.experiment.runner import differences

    old = {"seed": 0, "arms": [{"name": "a", "train": {"bias": 0.5}}], "mix": None}
    new = {"seed": 0, "arms": [{"name": "a", "train": {"bias": 0.0, "lr": 1e-5}}], "mix": {"questions": 4}}
    assert differences(old, new) == [
        "arms[0].train.bias: 0.5 -> 0.0",
        "arms[0].train.lr: null -> 1e-05",
        'mix: null -> {"questions": 4}',
    ]
    assert differences(old, old) == []
    assert differences({"arms": [1]}, {"arms": [1, 2]}) == ["arms: [1] -> [1, 2]"]


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"problems": 2, "size": 9},
            "data.options: kind sample-and-bench: got an unexpected keyword argument 'size'",
        ),
        ({}, None),
    ],
    ids=["unknown_option", "none"],
)
def test_data_options_are_checked_against_the_writer(tmp_path, monkeypatch, options, message):
    from experiment_helpers import PLUGGED, plugged_in

    from offcurate.experiment.schema import RecipeError

    plugged_in(monkeypatch)
    path = write_recipe(tmp_path, {**RECIPE, "data": {"kind": PLUGGED, "options": options}})
    if message is None:
        assert load_recipe(str(path)).data.options == options
        return
    with pytest.raises(RecipeError, match=f"^{path}: {message}$"):
        load_recipe(str(path))
    sample = write_recipe(tmp_path, {**RECIPE, "data": {"kind": "sample", "options": {"problems": 2}}})
    with pytest.raises(RecipeError, match="data.options: kind sample writes no data: remove them"):
        load_recipe(str(sample))


def test_toy_eval_command_is_one_a_shell_runs(tmp_path, monkeypatch, capsys):
    """The toy's benchmarks are written by its data stage: the printed eval command passes their pattern
    quoted, and `eval -b` expands it itself (one -b per file would need the files to exist already)."""
    import shlex

    code, err = run_cli(monkeypatch, capsys, "experiment", "toy", "-o", str(tmp_path / "run"), "--dry-run")
    assert code == 0
    commands = dict(re.findall(r"^\s*\d+\. (\S+)  (.*)$", err, flags=re.MULTILINE))
    argv = shlex.split(commands["eval/base"])
    run = tmp_path.resolve() / "run"
    assert argv[:4] == ["offcurate", "eval", "-b", f"{run}/data/benchmarks/*.jsonl"]
    assert commands["base-model"] == "(model builder toy, seed 0)"
    assert "teacher-logprobs/bias" in commands and "effects" in commands
