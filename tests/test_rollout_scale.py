"""``rollout`` at scale, on CPU: samples do not depend on how the work is cut; slices are read together.

One run, two slices (``--shard-index``), two engine processes (``--data-parallel-size 2``) and a run
stopped after two questions then resumed draw the same samples, bit for bit (tiny model, transformers
backend). The K slice folders under one parent are read by ``stats --base-rollouts`` and ``eval
--responses`` as one run, and refused when a slice is missing, doubled or of another run. Also: the
merge of many part files, the vLLM feeding loop and argument builders (pure), and the sizing table.
"""

from dataclasses import replace

import polars as pl
import pytest
from builders import write_voted_groups

pytest.importorskip("torch")
pytest.importorskip("transformers")

from offcurate.curate.io.errors import InputError  # noqa: E402
from offcurate.curate.stats import run_stats  # noqa: E402
from offcurate.rollout import parts as parts_module  # noqa: E402
from offcurate.rollout import stage as rollout_module  # noqa: E402
from offcurate.rollout.engines import deal, engine_envs  # noqa: E402
from offcurate.rollout.generate import Generation, Job, SamplingConfig  # noqa: E402
from offcurate.rollout.plan import Plan  # noqa: E402
from offcurate.rollout.reader import read_rollout_answers  # noqa: E402
from offcurate.rollout.sizing import SHAPES, markdown_table, recommended_tp  # noqa: E402
from offcurate.rollout.stage import run_rollout, slice_questions  # noqa: E402
from offcurate.rollout.vllm_engine import drive, fitted_max_model_len, sampling_args  # noqa: E402

QUESTIONS = {
    f"What is {a} + {b}?": [str(a + b)] * 3 + ["0"] for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (9, 1)]
}
K3 = Generation("tiny-random", SamplingConfig(k=3, max_new_tokens=5), batch_size=2)  # k in calls of 2 + 1


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    return write_voted_groups(tmp_path_factory.mktemp("scale"), QUESTIONS)


@pytest.fixture(scope="module")
def straight(voted, tmp_path_factory):
    """One uninterrupted run on one engine: what every other cut must reproduce."""
    out = tmp_path_factory.mktemp("straight") / "roll"
    run_rollout(voted, out, K3, select="all")
    return out


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.parquet"))}


def test_two_engines_write_the_files_of_one(voted, straight, tmp_path):
    qids = pl.read_parquet(straight / "*.parquet")["question_id"].unique().sort().to_list()
    jobs = [Job(q, "", "", [], 0) for q in qids]
    assert all(deal(jobs, 2)), "each engine must get questions, or the test proves nothing"
    report = run_rollout(voted, tmp_path / "roll", replace(K3, data_parallel_size=2), select="all")
    assert report.counts["engines"] == 2
    assert files(tmp_path / "roll") == files(straight)  # worker processes, merged: the same bytes


def test_two_slices_hold_the_samples_of_one_run(voted, straight, tmp_path):
    for index in range(2):
        run_rollout(voted, tmp_path / "slices" / f"s{index}", replace(K3, shard_index=index, num_shards=2),
                    select="all")  # fmt: skip
    heights = [pl.read_parquet(tmp_path / "slices" / f"s{i}" / "*.parquet").height for i in range(2)]
    assert all(heights), "each slice must hold questions, or the test proves nothing"
    whole = pl.read_parquet(straight / "*.parquet")
    together = pl.read_parquet(tmp_path / "slices" / "*" / "*.parquet").sort("question_id", "sample_idx")
    assert together.equals(whole)
    assert read_rollout_answers(tmp_path / "slices").equals(read_rollout_answers(straight))


def test_a_resumed_run_writes_the_files_of_one(voted, straight, tmp_path, monkeypatch):
    real = rollout_module.load_generator

    def stop_after_two(*args, **kwargs):
        generator = real(*args, **kwargs)
        stream = generator.stream

        def interrupted(jobs, sampling):
            for n, item in enumerate(stream(jobs, sampling)):
                if n == 2:
                    raise KeyboardInterrupt
                yield item

        generator.stream = interrupted
        return generator

    monkeypatch.setattr(rollout_module, "load_generator", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_rollout(voted, tmp_path / "roll", K3, select="all")
    monkeypatch.setattr(rollout_module, "load_generator", real)
    report = run_rollout(voted, tmp_path / "roll", K3, select="all", resume=True)
    assert report.counts["questions resumed (already sampled)"] == 2
    assert files(tmp_path / "roll") == files(straight)


def test_many_parts_are_merged_in_rounds(voted, straight, tmp_path, monkeypatch):
    monkeypatch.setattr(parts_module, "FLUSH_ROWS", 1)  # a part file per question
    monkeypatch.setattr(parts_module, "MAX_OPEN", 2)  # 5 parts: 3 merged files, then the output
    run_rollout(voted, tmp_path / "roll", K3, select="all")
    assert files(tmp_path / "roll") == files(straight)


def test_slices_are_scored_together_and_refused_when_incomplete(voted, straight, tmp_path):
    parent = tmp_path / "slices"
    for index in range(2):
        run_rollout(voted, parent / f"s{index}", replace(K3, shard_index=index, num_shards=2), select="all")
    whole = run_stats(voted, tmp_path / "whole", base_rollouts=straight, workers=1)
    sliced = run_stats(voted, tmp_path / "sliced", base_rollouts=parent, workers=1)
    table = "base_pass_rate.parquet"
    assert pl.read_parquet(tmp_path / "sliced" / table).equals(pl.read_parquet(tmp_path / "whole" / table))
    assert sliced.counts == whole.counts

    (parent / "s1").rename(parent / ".s1.partial")  # as if slice 1 were still running
    with pytest.raises(InputError, match=r"slice 1 of 2 missing \(unfinished here: .s1.partial"):
        read_rollout_answers(parent)
    (parent / ".s1.partial").rename(parent / "s1")
    run_rollout(voted, parent / "again", replace(K3, shard_index=1, num_shards=2), select="all")
    with pytest.raises(InputError, match="both slice 1 of 2"):
        read_rollout_answers(parent)
    run_rollout(voted, parent / "again", replace(K3, shard_index=1, num_shards=2, seed=1), select="all",
                overwrite=True)  # fmt: skip
    with pytest.raises(InputError, match="not slices of one run .* seed differ"):
        read_rollout_answers(parent)


def test_slices_follow_the_vote_slicing_and_engines_spread_within_a_slice():
    ids = [f"{i * 7919:08x}{i:08x}" for i in range(64)]
    frame = pl.DataFrame({"question_id": ids, "question": ids})
    slices = [set(slice_questions(frame, i, 4)["question_id"]) for i in range(4)]
    assert sorted(len(s) for s in slices) == [16] * 4 and set().union(*slices) == set(ids)
    assert slices[1] == {q for q in ids if int(q[:8], 16) % 4 == 1}  # vote's rule: hash % K
    jobs = [Job(q, "", "", [], 0) for q in sorted(slices[1])]
    assert [len(e) for e in deal(jobs, 2, num_shards=4)] == [8, 8]  # not all on one engine


def test_engine_environments():
    gpu = Plan("vllm", "cuda", "H100", "bf16", engines=2, gpus_per_engine=2)
    assert engine_envs(gpu, 2) == [{"CUDA_VISIBLE_DEVICES": "0,1"}, {"CUDA_VISIBLE_DEVICES": "2,3"}]
    cpu = Plan("transformers", "cpu", "cpu", "fp32", engines=2, gpus_per_engine=0)
    assert all(int(env["OFFCURATE_THREADS"]) >= 1 for env in engine_envs(cpu, 2))


class StandInEngine:
    """The two calls of vLLM's LLMEngine that ``drive`` uses; finishes requests in a scrambled order."""

    def __init__(self):
        self.queue, self.most = [], 0

    def add_request(self, request_id, prompt, params):
        self.queue.append(request_id)
        self.most = max(self.most, len(self.queue))

    def step(self):
        finished = self.queue.pop(len(self.queue) // 2)
        partial = [type("Out", (), {"request_id": r, "finished": False}) for r in self.queue[:1]]
        return [*partial, type("Out", (), {"request_id": finished, "finished": True})]


def test_drive_keeps_the_engine_full_and_yields_as_requests_finish():
    engine = StandInEngine()
    out = [o.request_id for o in drive(engine, ((str(i), {}, None) for i in range(50)), in_flight=8)]
    assert sorted(out, key=int) == [str(i) for i in range(50)] and out != sorted(out, key=int)
    assert engine.most == 8  # never more in flight, and refilled up to it


@pytest.mark.parametrize(
    "longest, new, positions, given, expected",
    [
        pytest.param(900, 32768, 131072, None, 33668, id="fitted_to_the_prompts"),
        pytest.param(900, 32768, 32768, None, 32768, id="capped_by_the_model"),
        pytest.param(900, 32768, 131072, 40000, 40000, id="given"),
    ],
)
def test_max_model_len(longest, new, positions, given, expected):
    assert fitted_max_model_len(longest, new, positions, given) == expected


def test_sampling_args_cap_max_tokens_at_the_context():
    greedy = sampling_args(SamplingConfig(k=4, max_new_tokens=100, temperature=0), 7, 30, 120)
    assert greedy == {"n": 4, "temperature": 0, "top_p": 1.0, "max_tokens": 90, "seed": 7}


def test_sizing_table_is_computed_and_in_readme():
    from bench_helpers import ROOT

    assert markdown_table() in (ROOT / "README.md").read_text()
    assert [recommended_tp(s) for s in SHAPES.values()] == [1, 1, 4]
    assert "1.5B and 7B: TP 1 (DP 8); 32B: TP 4 (DP 2)" in " ".join(
        (ROOT / "cli.py").read_text().split()
    )  # what `rollout --help` says


def test_eval_model_samples_in_slices_then_scores_them_together(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from offcurate.cli import main

    bench = tmp_path / "toy.jsonl"
    bench.write_text(
        "".join(json.dumps({"question": q, "answer": a[0]}) + "\n" for q, a in QUESTIONS.items())
    )

    def run(*args):
        model = (
            ["--model", "tiny-random", "-k", "2", "--max-new-tokens", "3"]
            if "--responses" not in args
            else []
        )
        monkeypatch.setattr(sys, "argv", ["offcurate", "eval", "-b", str(bench), *model, *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 0, capsys.readouterr().err
        return " ".join(capsys.readouterr().err.split())

    run("-o", str(tmp_path / "whole"))
    for index in range(2):
        said = run("-o", str(tmp_path / "eval"), "--shard-index", str(index), "--num-shards", "2")
        assert (
            f"slice {index} of 2 sampled into {tmp_path / 'eval-responses' / f'shard-{index}-of-2'}" in said
        )
    assert not (tmp_path / "eval").exists()  # a slice alone is not scored
    run("--responses", str(tmp_path / "eval-responses"), "-o", str(tmp_path / "eval"))
    results = pl.read_parquet(tmp_path / "eval" / "results.parquet")
    assert results.equals(pl.read_parquet(tmp_path / "whole" / "results.parquet"))
    assert results["samples"].to_list() == [2] * len(QUESTIONS)


def test_sigterm_stops_a_run_like_an_error_so_finished_questions_are_flushed(tmp_path):
    """Slurm preempts with SIGTERM: it becomes SystemExit, and a part writer leaving the block writes
    what it holds (a plain SIGTERM would kill the process with the buffer unwritten)."""
    import os
    import signal

    from offcurate.rollout.engines import rows_of, term_as_exit
    from offcurate.rollout.generate import Completion
    from offcurate.rollout.parts import PartWriter

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped, term_as_exit(), PartWriter(tmp_path, "t") as writer:
        writer.add(rows_of(Job("q", "Q?", "", [], 0), [Completion("a", "stop", 1)], False))
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next line
        pytest.fail("SIGTERM did not stop the block")
    assert stopped.value.code == 128 + signal.SIGTERM
    assert pl.read_parquet(tmp_path / "part-t-000000.parquet")["question_id"].to_list() == ["q"]
    assert signal.getsignal(signal.SIGTERM) == before  # restored
