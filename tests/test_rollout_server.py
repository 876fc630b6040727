"""``rollout --backend openai`` against a real server: ``transformers serve`` on CPU with the tiny model.

The test starts the server (transformers' ``serving`` extra: fastapi, uvicorn, openai, in the ``dev``
extra) on a free loopback port, samples through it, stops the run after one question and resumes it,
and checks the one-line errors for a model the server does not serve and for a server that is not
there. The retry schedule and the request/answer mapping are pure functions, tested without a server.
"""

import socket
import subprocess
import sys
import time
import urllib.request

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("fastapi")  # transformers' serving extra (pip install -e ".[dev]")
pytest.importorskip("uvicorn")

from offcurate.cli import main  # noqa: E402
from offcurate.rollout import openai_client  # noqa: E402
from offcurate.rollout.generate import Completion, Generation, Job, SamplingConfig  # noqa: E402
from offcurate.rollout.openai_client import (  # noqa: E402
    ServerError,
    completion_of,
    request_body,
    retry_delay,
    retryable,
)
from offcurate.rollout.stage import run_rollout  # noqa: E402
from offcurate.train.tiny import write_tiny_model  # noqa: E402

QUESTIONS = ["What is 1+1?", "What is 2+3?", "Name a prime.", "What is 7*6?"]
_SERVE = "from transformers.cli.transformers import main; main()"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``transformers serve MODEL`` on CPU; yields (endpoint, model folder)."""
    root = tmp_path_factory.mktemp("serve")
    model = write_tiny_model(root / "tiny")
    port = free_port()
    log = (root / "serve.log").open("w")
    env = {"HF_HOME": str(root / "hf"), "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE, "serve", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--device", "cpu"],
        stdout=log, stderr=subprocess.STDOUT, env={**__import__("os").environ, **env},
    )  # fmt: skip
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"transformers serve did not start:\n{(root / 'serve.log').read_text()[-3000:]}"
                    )
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", model
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def questions(tmp_path_factory):
    path = tmp_path_factory.mktemp("questions") / "q.parquet"
    pq.write_table(pa.table({"question": QUESTIONS}), path)
    return path


def through(server, **options) -> Generation:
    endpoint, model = server
    sampling = SamplingConfig(k=2, max_new_tokens=4)
    return Generation(str(model), sampling, backend="openai", endpoint=endpoint, **options)


def test_samples_through_the_server_and_resumes(server, questions, tmp_path, monkeypatch):
    """One request at a time, the server draws each with its seed, so a resumed run repeats the samples
    (with requests in parallel, transformers serve's global torch seed makes no such promise)."""
    g = through(server, concurrency=1)
    straight = run_rollout(questions, tmp_path / "straight", g, select="all")
    rolls = pl.read_parquet(tmp_path / "straight" / "*.parquet")
    assert rolls.height == len(QUESTIONS) * 2 and straight.counts["backend"] == "openai"
    assert rolls.group_by("question_id").agg("sample_idx")["sample_idx"].list.sort().to_list() == [[0, 1]] * 4
    assert set(rolls["finish_reason"]) <= {"stop", "length"}
    assert rolls["response_tokens"].max() <= 4 and rolls["response_tokens"].min() >= 0

    stream = openai_client.OpenAIGenerator.stream

    def one_then_stop(self, jobs, sampling):
        for n, item in enumerate(stream(self, jobs, sampling)):
            if n == 1:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(openai_client.OpenAIGenerator, "stream", one_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_rollout(questions, tmp_path / "resumed", g, select="all")
    monkeypatch.setattr(openai_client.OpenAIGenerator, "stream", stream)
    report = run_rollout(questions, tmp_path / "resumed", g, select="all", resume=True)
    assert report.counts["questions resumed (already sampled)"] == 1
    assert pl.read_parquet(tmp_path / "resumed" / "*.parquet").equals(rolls)


def run_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["offcurate", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, " ".join(capsys.readouterr().err.split())


def test_a_model_the_server_does_not_serve_is_one_line(server, questions, tmp_path, monkeypatch, capsys):
    endpoint, model = server
    other = write_tiny_model(tmp_path / "other")  # loads here, but the server is pinned to its own model
    out = tmp_path / "runs" / "out"
    out.parent.mkdir()
    args = ["rollout", "-i", str(questions), "--questions", "all", "-o", str(out), "--model", str(other),
            "--backend", "openai", "--endpoint", endpoint]  # fmt: skip
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and f"--model {other}: the server at {endpoint} refused it (HTTP 400" in err
    assert f"it serves: {model}" in err and "Traceback" not in err
    assert list(out.parent.iterdir()) == []


def test_an_unreachable_server_is_one_line(questions, tmp_path, monkeypatch, capsys):
    model = write_tiny_model(tmp_path / "tiny")
    endpoint = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    out = tmp_path / "runs" / "out"
    out.parent.mkdir()
    args = ["rollout", "-i", str(questions), "--questions", "all", "-o", str(out), "--model", str(model),
            "--backend", "openai", "--endpoint", endpoint]  # fmt: skip
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and f"--endpoint {endpoint}: cannot reach the server" in err and "Traceback" not in err
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize(
    "status, retried",
    [
        (None, True),
        (429, True),
        (500, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (404, False),
    ],
)
def test_what_is_retried(status, retried):
    assert retryable(ServerError(status, "x")) is retried


def test_backoff_grows_is_capped_and_honours_retry_after():
    assert all(0.5 <= retry_delay(0) <= 1.0 for _ in range(20))
    assert all(4.0 <= retry_delay(3) <= 8.0 for _ in range(20))
    assert retry_delay(30) <= 60.0
    assert retry_delay(0, retry_after="7") == 7.0 and retry_delay(5, retry_after="soon") <= 32.0


def test_requests_and_answers():
    job = Job("q", "What?", "<|im_start|>user\nWhat?", [1, 2], seed=100)
    sampling = SamplingConfig(k=4, max_new_tokens=9, temperature=0)
    body = request_body("completions", "m", job, sampling, sample=3)
    assert body == {"model": "m", "max_tokens": 9, "temperature": 0, "top_p": 1.0, "seed": 103,
                    "prompt": job.prompt}  # fmt: skip
    assert request_body("chat", "m", job, sampling, 0)["messages"] == [{"role": "user", "content": "What?"}]
    reply = {"choices": [{"text": "42", "finish_reason": "length"}], "usage": {"completion_tokens": 9}}
    assert completion_of("completions", reply, False) == Completion("42", "length", 9)
    split = {"choices": [{"message": {"content": "42", "reasoning_content": "hmm"}, "finish_reason": "stop"}]}
    assert completion_of("chat", split, opens_think=False) == Completion(
        "<think>\nhmm\n</think>\n\n42", "stop", -1
    )
    assert completion_of("chat", split, opens_think=True).text == "hmm\n</think>\n\n42"
