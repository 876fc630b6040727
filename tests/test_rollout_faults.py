"""``rollout`` and ``eval --model`` under bad options (issue 22): one line, exit 2, nothing left behind.

- A float option that is not finite or out of range (``--temperature nan``) is one line, not a traceback.
- A wrong backend, a missing vLLM, ``--device cuda`` without a GPU, an unknown dtype, a missing model:
  refused before the hidden ``.OUT.partial`` exists, so the corrected command is not then refused "an
  unfinished rollout is there".
- ``--resume`` with anything that changes samples (dtype, the model's weights, seed, samples per call) is
  refused naming what changed, instead of mixing samples of two precisions or two models.
"""

import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from offcurate.cli import main  # noqa: E402
from offcurate.rollout import stage as rollout_module  # noqa: E402
from offcurate.train.tiny import write_tiny_model  # noqa: E402


def run_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["offcurate", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "q.parquet"
    pq.write_table(pa.table({"question": ["What is 1+1?", "What is 2+3?", "Name a prime."]}), path)
    return path


def rollout_args(questions, out, *extra):
    return ["rollout", "-i", str(questions), "--questions", "all", "-o", str(out), "--model", "tiny-random",
            "-k", "2", "--max-new-tokens", "3", *extra]  # fmt: skip


def eval_args(tmp_path, out, *extra):
    (tmp_path / "b.jsonl").write_text('{"question": "What is 1+1?", "answer": "2"}\n')
    return ["eval", "-b", str(tmp_path / "b.jsonl"), "-o", str(out), "--model", "tiny-random", "-k", "2",
            "--max-new-tokens", "3", *extra]  # fmt: skip


def assert_one_line(code, err, message):
    assert code == 2 and message in " ".join(err.split()) and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


NOT_FINITE = {
    "temperature_nan": (["--temperature", "nan"], "--temperature must be a finite number >= 0, got nan"),
    "temperature_inf": (["--temperature", "inf"], "--temperature must be a finite number >= 0, got inf"),
    "temperature_negative": (["--temperature", "-0.5"], "--temperature must be a finite number >= 0, got -0"),
    "top_p_nan": (["--top-p", "nan"], "--top-p must be a number in (0, 1], got nan"),
    "top_p_zero": (["--top-p", "0"], "--top-p must be a number in (0, 1], got 0.0"),
    "top_p_above_one": (["--top-p", "1.5"], "--top-p must be a number in (0, 1]"),
    "gpu_memory_nan": (["--gpu-memory-utilization", "nan"], "--gpu-memory-utilization must be in (0, 1]"),
    "gpu_memory_above_one": (["--gpu-memory-utilization", "2"], "--gpu-memory-utilization must be in (0, 1]"),
    "seed_negative": (["--seed", "-1"], "--seed must be >= 0"),
    "shard_index_out_of_range": (
        ["--shard-index", "2", "--num-shards", "2"], "--shard-index must be in [0, 2), got 2"
    ),
}  # fmt: skip


@pytest.mark.parametrize("command", ["rollout", "eval"])
@pytest.mark.parametrize("extra, message", list(NOT_FINITE.values()), ids=list(NOT_FINITE))
def test_float_options_must_be_finite_and_in_range(
    tmp_path, monkeypatch, capsys, questions, command, extra, message
):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs" / "out"
    out.parent.mkdir()
    args = rollout_args(questions, out, *extra) if command == "rollout" else eval_args(tmp_path, out, *extra)
    code, err = run_cli(monkeypatch, capsys, *args)
    assert list(out.parent.iterdir()) == []  # nothing created, not even a hidden folder
    assert_one_line(code, err, message)


REFUSED_BEFORE_ANYTHING = {
    "vllm_not_installed": (["--backend", "vllm"], "--backend vllm: vLLM is not installed"),
    "cuda_without_gpu": (["--device", "cuda"], "--device cuda: CUDA is not available on this machine"),
    "dtype_fp16": (["--dtype", "fp16"], "--dtype must be one of auto, bf16, fp32, got 'fp16'"),
    "unknown_backend": (["--backend", "foo"], "--backend must be one of auto, transformers, vllm, openai"),
    "tensor_parallel_without_vllm": (["--tensor-parallel-size", "2"], "need the vLLM backend"),
    "vllm_option_on_transformers": (
        ["--backend", "transformers", "--max-model-len", "64"], "--max-model-len: options of --backend vllm"
    ),
    "openai_without_endpoint": (["--backend", "openai"], "--backend openai needs --endpoint URL"),
    "endpoint_without_openai": (["--endpoint", "http://x/v1"], "--endpoint: options of --backend openai"),
    "api_key_env_unset": (
        ["--backend", "openai", "--endpoint", "http://127.0.0.1:9/v1",
         "--api-key-env", "OFFCURATE_NO_SUCH_KEY"],
        "--api-key-env OFFCURATE_NO_SUCH_KEY: that environment variable is not set",
    ),
    "missing_model_folder": (["--model", "NAME/of/no/model"], "cannot load its tokenizer"),
}  # fmt: skip


@pytest.mark.parametrize("command", ["rollout", "eval"])
@pytest.mark.parametrize(
    "extra, message", list(REFUSED_BEFORE_ANYTHING.values()), ids=list(REFUSED_BEFORE_ANYTHING)
)
def test_refused_before_the_partial_folder_exists(
    tmp_path, monkeypatch, capsys, questions, command, extra, message
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a missing model is looked up in the cache only
    monkeypatch.delenv("OFFCURATE_NO_SUCH_KEY", raising=False)
    out = tmp_path / "runs" / "out"
    out.parent.mkdir()
    args = rollout_args(questions, out, *extra) if command == "rollout" else eval_args(tmp_path, out, *extra)
    code, err = run_cli(monkeypatch, capsys, *args)
    assert list(out.parent.iterdir()) == []  # no .out.partial, no .out-responses.partial, no output
    assert_one_line(code, err, message)


def test_the_corrected_command_then_runs(tmp_path, monkeypatch, capsys, questions):
    out = tmp_path / "out"
    code, err = run_cli(monkeypatch, capsys, *rollout_args(questions, out, "--backend", "vllm"))
    assert code == 2
    code, err = run_cli(monkeypatch, capsys, *rollout_args(questions, out, "--backend", "transformers"))
    assert code == 0, err
    assert len(list(out.glob("*.parquet"))) == 1


def interrupt_after_one(monkeypatch):
    real = rollout_module.load_generator

    def loading(*args, **kwargs):
        generator = real(*args, **kwargs)
        stream = generator.stream

        def interrupted(jobs, sampling):
            for n, item in enumerate(stream(jobs, sampling)):
                if n == 1:
                    raise KeyboardInterrupt
                yield item

        generator.stream = interrupted
        return generator

    monkeypatch.setattr(rollout_module, "load_generator", loading)
    return real


def _retrain(model):
    write_tiny_model(model, seed=1)  # same path, same shapes, other weights


CHANGED_ON_RESUME = {
    "dtype": (["--dtype", "bf16"], None, "dtype 'fp32' there, 'bf16' now"),
    "model_weights": ([], _retrain, "model_identity"),
    "seed": (["--seed", "3"], None, "seed 0 there, 3 now"),
    "samples_per_call": (["--batch-size", "1"], None, "rows_per_call 2 there, 1 now"),
}


@pytest.mark.parametrize(
    "extra, change, message", list(CHANGED_ON_RESUME.values()), ids=list(CHANGED_ON_RESUME)
)
def test_resume_refuses_what_changes_samples(
    tmp_path, monkeypatch, capsys, questions, extra, change, message
):
    model = write_tiny_model(tmp_path / "model")
    out = tmp_path / "out"
    args = [*rollout_args(questions, out), "--model", str(model)]
    real = interrupt_after_one(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["offcurate", *args])
    with pytest.raises(SystemExit) as stopped:  # Ctrl-C: typer exits 130
        main()
    assert stopped.value.code == 130
    monkeypatch.setattr(rollout_module, "load_generator", real)
    partial = tmp_path / ".out.partial"
    assert list(partial.glob("part-*.parquet")), "the first question was kept"
    if change:
        change(model)
    code, err = run_cli(monkeypatch, capsys, *args, *extra, "--resume")
    assert_one_line(code, err, "--resume:")
    assert message in " ".join(err.split()) and "samples would not match" in " ".join(err.split())
    assert not out.exists()


def test_resume_of_a_finished_run_samples_nothing_and_checks_its_options(
    tmp_path, monkeypatch, capsys, questions
):
    """A finished rollout resumed (a script that always passes --resume) is kept as it is; with other
    options it is refused as an unfinished one is."""
    out = tmp_path / "out"
    assert run_cli(monkeypatch, capsys, *rollout_args(questions, out))[0] in (0, None)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def no_sampling(*args, **kwargs):
        raise AssertionError("a finished run was sampled again")

    monkeypatch.setattr(rollout_module, "load_generator", no_sampling)
    code, err = run_cli(monkeypatch, capsys, *rollout_args(questions, out), "--resume")
    assert code in (0, None) and "already finished" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    code, err = run_cli(monkeypatch, capsys, *rollout_args(questions, out, "--seed", "3"), "--resume")
    assert_one_line(code, err, "seed 0 there, 3 now")
    assert "the finished run in" in " ".join(err.split())


def test_eval_resumed_after_sampling_scores_the_samples(tmp_path, monkeypatch, capsys):
    """`eval --model --resume` killed after sampling, before scoring: the same command scores the samples
    it has instead of refusing their folder."""
    out = tmp_path / "eval"
    args = eval_args(tmp_path, out)
    assert run_cli(monkeypatch, capsys, *args)[0] in (0, None)
    summary = (out / "summary.json").read_text()
    for path in sorted(out.iterdir(), reverse=True):  # scoring killed: no eval output
        path.unlink() if path.is_file() else None
    out.rmdir()
    code, err = run_cli(monkeypatch, capsys, *args, "--resume")
    assert code in (0, None), err
    assert (out / "summary.json").read_text() == summary
