"""``rollout``: question selection, seeds, stop handling, the vLLM adapter, resume, bad input.

The transformers path runs for real on a tiny random-init model (CPU); vLLM is not installed here, so its
adapter is driven through a stand-in module that records what it was asked (the GPU rows of
bench/bench_rollout.py run the real one). Scale (slices, engines, the merge): test_rollout_scale.py.
"""

import errno
import importlib.machinery
import os
import sys
import types

import polars as pl
import pytest
from builders import write_voted_groups

pytest.importorskip("torch")
pytest.importorskip("transformers")

from offcurate.curate.io.errors import InputError, OffcurateError, OutputExistsError  # noqa: E402
from offcurate.curate.io.ids import question_id  # noqa: E402
from offcurate.rollout import parts as parts_module  # noqa: E402
from offcurate.rollout import stage as rollout_module  # noqa: E402
from offcurate.rollout.engines import rows_of  # noqa: E402
from offcurate.rollout.generate import (  # noqa: E402
    Completion,
    Generation,
    Job,
    SamplingConfig,
    cut_at_stop,
    pick_backend,
    question_seed,
    sample_calls,
)
from offcurate.rollout.stage import run_rollout  # noqa: E402
from offcurate.rollout.vllm_engine import VLLMGenerator  # noqa: E402

GROUPS = {
    "What is 1+1?": ["2", "2", "2", "2"],  # all-positive
    "What is 2+2?": ["4", "4", "4", "5"],
    "What is 3+3?": ["6", "6", "6", "6"],  # all-positive
    "Name a prime.": ["2", "3", "2", "3"],  # tie: not ok
    "What is 5+5?": ["10", "10", "11", "10"],
}
SMALL = SamplingConfig(k=2, max_new_tokens=6)


def tiny(batch_size=64, sampling=SMALL):
    return Generation("tiny-random", sampling, batch_size=batch_size)


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    return write_voted_groups(tmp_path_factory.mktemp("rollout"), GROUPS)


def read(folder):
    return pl.read_parquet(folder / "*.parquet")


@pytest.mark.parametrize(
    "ids, stop, expected",
    [
        pytest.param([5, 6, 2, 7, 2], {2}, ([5, 6], "stop"), id="first_stop_wins"),
        pytest.param([5, 6, 7], {2}, ([5, 6, 7], "length"), id="no_stop_is_length"),
        pytest.param([9, 5], {2, 9}, ([], "stop"), id="stop_at_once"),
        pytest.param([5, 0, 0], {2}, ([5, 0, 0], "length"), id="padding_is_not_a_stop"),
    ],
)
def test_cut_at_stop(ids, stop, expected):
    assert cut_at_stop(ids, stop) == expected


def test_a_question_is_sampled_in_calls_of_its_own_with_its_own_seed():
    assert sample_calls(8, 64) == [(0, 8)]  # k samples of one prompt: one call, no padding
    assert sample_calls(5, 2) == [(0, 2), (2, 2), (4, 1)]  # k > --batch-size: calls of at most that
    assert question_seed(3, "abc") == question_seed(3, "abc") != question_seed(3, "abd")
    assert question_seed(3, "abc") != question_seed(4, "abc")
    assert 0 <= question_seed(2**40, "x") < 2**62  # room for seed + sample index in an int64


@pytest.mark.parametrize("opens_think, prefix", [(True, "<think>\n"), (False, "")])
def test_rows_restore_think(opens_think, prefix):
    samples = [Completion("a</think> \\boxed{2}", "stop", 5), Completion("cut", "length", 6)]
    rows = rows_of(Job("q1", "What?", "p", [1], 7), samples, opens_think)
    assert rows["response"] == [prefix + "a</think> \\boxed{2}", prefix + "cut"]
    assert (rows["sample_idx"], rows["finish_reason"], rows["response_tokens"]) == (
        [0, 1],
        ["stop", "length"],
        [5, 6],
    )


def test_backend_choice():
    assert pick_backend("auto", cuda=False) == "transformers"
    assert pick_backend("transformers", cuda=True) == "transformers"
    with pytest.raises(OffcurateError, match="vLLM is not installed"):
        pick_backend("vllm", cuda=True)
    with pytest.raises(OffcurateError, match="--backend must be one of"):
        pick_backend("onnx", cuda=False)


def test_vllm_adapter_maps_outputs(monkeypatch):
    """A stand-in ``vllm`` module: the adapter's calls (engine arguments, one request per question with
    n = k and the question's seed, prompt token ids) and its reading of finished outputs."""
    calls = {"requests": []}

    class Engine:
        def __init__(self):
            self.queue = []

        def add_request(self, request_id, prompt, params):
            calls["requests"].append((request_id, prompt, params.kwargs))
            self.queue.append((request_id, params.kwargs["n"]))

        def step(self):
            request_id, n = self.queue.pop()  # finishes the newest first: any order must do

            def completion(i):
                reason = "length" if i else "stop"
                ids = [1] * (i + 2)  # a stop token ends "stop" samples: it is not counted
                return types.SimpleNamespace(text=f"{request_id}-{i}", finish_reason=reason, token_ids=ids)

            outputs = [completion(i) for i in range(n)]
            return [types.SimpleNamespace(request_id=request_id, finished=True, outputs=outputs)]

    class LLM:
        def __init__(self, **kwargs):
            calls["init"] = kwargs
            self.llm_engine = Engine()

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = LLM, SamplingParams
    fake.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    assert pick_backend("auto", cuda=True) == "vllm" and pick_backend("auto", cuda=False) == "transformers"
    g = Generation("some/model", SamplingConfig(k=2, max_new_tokens=9), seed=5, tensor_parallel_size=2)
    jobs = [Job("a", "A?", "pa", [4, 5, 6], 100), Job("b", "B?", "pb", [7], 200)]
    got = dict(VLLMGenerator("some/model", g, "bf16", max_model_len=11).stream(jobs, g.sampling))
    assert calls["init"] == {
        "model": "some/model", "dtype": "bfloat16", "tensor_parallel_size": 2, "max_model_len": 11,
        "gpu_memory_utilization": 0.9, "enable_prefix_caching": True, "seed": 5, "disable_log_stats": True,
    }  # fmt: skip
    assert [(r[0], r[1]) for r in calls["requests"]] == [
        ("0", {"prompt_token_ids": [4, 5, 6]}),
        ("1", {"prompt_token_ids": [7]}),
    ]
    first = {"n": 2, "temperature": 0.6, "top_p": 0.95, "max_tokens": 8, "seed": 100}
    assert calls["requests"][0][2] == first
    assert calls["requests"][1][2]["max_tokens"] == 9  # 1 + 9 fits the context of 11
    assert got == {
        0: [Completion("0-0", "stop", 1), Completion("0-1", "length", 3)],
        1: [Completion("1-0", "stop", 1), Completion("1-1", "length", 3)],
    }


def test_rollout_writes_k_samples_per_selected_question(voted, tmp_path):
    report = run_rollout(voted, tmp_path / "roll", tiny(2), select="all-positive")
    rolls = read(tmp_path / "roll")
    expected = sorted(question_id(q) for q in ("What is 1+1?", "What is 3+3?"))
    assert sorted(set(rolls["question_id"])) == expected
    assert rolls.group_by("question_id").agg("sample_idx")["sample_idx"].to_list() == [[0, 1], [0, 1]]
    assert set(rolls["finish_reason"]) <= {"stop", "length"}
    assert rolls["response_tokens"].max() <= 6
    assert set(rolls["question"]) == {"What is 1+1?", "What is 3+3?"}
    assert report.counts["samples"] == 4 and report.counts["questions"] == 2
    assert not list(tmp_path.glob(".roll.partial*"))  # the hidden work folder is gone
    assert (tmp_path / "roll" / "rollout.json").is_file() and (tmp_path / "roll" / "README.md").is_file()


def test_ok_selection_and_limit(voted, tmp_path):
    run_rollout(voted, tmp_path / "roll", tiny(), select="ok", limit=3)
    ok = sorted(question_id(q) for q in GROUPS if q != "Name a prime.")
    assert sorted(set(read(tmp_path / "roll")["question_id"])) == ok[:3]


def interrupt_after(monkeypatch, questions: int):
    """Make the next run's engine stop (Ctrl-C) once it has finished ``questions`` questions."""
    real = rollout_module.load_generator

    def loading(*args, **kwargs):
        gen = real(*args, **kwargs)
        original = gen.stream

        def stream(jobs, sampling):
            for n, item in enumerate(original(jobs, sampling)):
                if n == questions:
                    raise KeyboardInterrupt
                yield item

        gen.stream = stream
        return gen

    monkeypatch.setattr(rollout_module, "load_generator", loading)
    return real


def test_resume_gives_the_uninterrupted_result(voted, tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    run_rollout(voted, straight, tiny(2), select="ok")

    interrupted = tmp_path / "interrupted"
    real = interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run_rollout(voted, interrupted, tiny(2), select="ok")
    assert not interrupted.exists()
    monkeypatch.setattr(rollout_module, "load_generator", real)
    with pytest.raises(OutputExistsError, match="--resume"):
        run_rollout(voted, interrupted, tiny(2), select="ok")
    with pytest.raises(InputError, match="k differ"):
        run_rollout(
            voted, interrupted, tiny(2, SamplingConfig(k=3, max_new_tokens=6)), select="ok", resume=True
        )
    report = run_rollout(voted, interrupted, tiny(2), select="ok", resume=True)
    assert report.counts["questions resumed (already sampled)"] == 1
    assert read(interrupted).equals(read(straight))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        pytest.param({"select": "easy"}, InputError, "--questions must be one of", id="bad_selection"),
        pytest.param({"sampling": None}, OffcurateError, "-k and --max-new-tokens", id="bad_k"),
    ],
)
def test_bad_options(voted, tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        sampling = SamplingConfig(k=0) if "sampling" in kwargs else SMALL
        run_rollout(voted, tmp_path / "roll", tiny(sampling=sampling), select=kwargs.get("select", "ok"))
    assert not (tmp_path / "roll").exists()


def test_input_without_questions(tmp_path):
    (tmp_path / "in").mkdir()
    pl.DataFrame({"prompt": ["x"]}).write_parquet(tmp_path / "in" / "a.parquet")
    with pytest.raises(InputError, match="missing column 'question'"):
        run_rollout(tmp_path / "in", tmp_path / "roll", tiny(), select="all")


def test_parts_stream_into_shards_of_bounded_size(voted, tmp_path, monkeypatch):
    run_rollout(voted, tmp_path / "one", tiny(2), select="ok")
    monkeypatch.setattr(parts_module, "SAMPLES_PER_SHARD", 3)
    report = run_rollout(voted, tmp_path / "many", tiny(2), select="ok")
    shards = sorted((tmp_path / "many").glob("*.parquet"))
    assert [s.name for s in shards] == [f"train-{i:05d}-of-00003.parquet" for i in range(3)]
    assert [pl.read_parquet(s).height for s in shards] == [3, 3, 2]  # 4 ok questions x k = 2
    assert read(tmp_path / "many").equals(read(tmp_path / "one"))
    assert report.counts["finished (stop token)"] + report.counts["cut at --max-new-tokens"] == 8


def _disk_full_mid_save(partial, monkeypatch):
    """The model saved, then the disk fills while the tokenizer is written: the run stops with one line."""
    from transformers import PreTrainedTokenizerFast

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(PreTrainedTokenizerFast, "save_pretrained", full)
        with pytest.raises(OffcurateError, match="No space left on device"):
            run_rollout(partial.parent / "roll", partial.parent / "out", tiny(2), select="ok")


def _half_folder_of_an_older_run(partial, monkeypatch):
    """What the non-atomic build used to leave: a model without its tokenizer files."""
    (partial / "tiny-random").mkdir(parents=True)
    (partial / "tiny-random" / "config.json").write_text("{}")


@pytest.mark.parametrize("interrupt", [_disk_full_mid_save, _half_folder_of_an_older_run])
def test_a_half_built_tiny_model_is_rebuilt_on_resume(voted, tmp_path, monkeypatch, interrupt):
    (tmp_path / "roll").symlink_to(voted)
    straight = run_rollout(voted, tmp_path / "straight", tiny(2), select="ok")
    partial = tmp_path / ".out.partial"
    interrupt(partial, monkeypatch)
    assert not (partial / "tiny-random" / "tiny-random.json").exists()
    assert not list(partial.glob(".tiny-random.tmp-*"))
    report = run_rollout(voted, tmp_path / "out", tiny(2), select="ok", resume=True)
    assert report.counts["samples"] == straight.counts["samples"] > 0
    assert read(tmp_path / "out").equals(read(tmp_path / "straight"))
