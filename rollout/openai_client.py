"""The ``openai`` backend: sample through an OpenAI-compatible server (vLLM, SGLang, TGI, transformers serve).

    offcurate rollout ... --backend openai --endpoint http://node7:8000/v1 --concurrency 128

The chat template is applied here and the text sent to ``/completions``, so training and sampling see
one format (the server's ``/chat/completions`` is used only where it has no ``/completions``). Each
sample is one request (n = 1, which every server supports) with seed = the question's seed + its index,
the seeds vLLM's own n-sampling would use. ``--concurrency`` requests are in flight; a 408/409/429/5xx
answer, a timeout or a dropped connection is retried with exponential backoff (``Retry-After`` is
honoured), anything else stops the run with one line. Before anything is created, one probe request says
whether the server is reachable, takes the API key and serves ``--model``.

Standard library only (``urllib`` in daemon threads): a request lasts seconds to minutes, so a new
connection per request costs nothing that matters, and no client library is needed.
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence

from ..curate.io.errors import OffcurateError
from .generate import Completion, Generation, Job, SamplingConfig

CONCURRENCY = 64
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
ATTEMPTS = 10  # backoff 1, 2, 4, ... capped at 60 s: about 4 minutes of retries
TIMEOUT_S = 3600.0  # one request may generate 32K tokens on a busy server
_ROUTE_MISSING = {"Not Found", "Method Not Allowed"}


class ServerError(Exception):
    """A failed request: ``status`` None when no HTTP answer came (refused, reset, timed out)."""

    def __init__(self, status: int | None, detail: str, retry_after: str | None = None):
        super().__init__(f"HTTP {status}: {detail}" if status else detail)
        self.status, self.detail, self.retry_after = status, detail, retry_after


def retryable(err: ServerError) -> bool:
    return err.status is None or err.status in RETRY_STATUS


def retry_delay(attempt: int, retry_after: str | None = None, cap: float = 60.0) -> float:
    """Seconds before retry ``attempt`` (0-based): the server's ``Retry-After`` when it gives seconds,
    else exponential backoff with jitter, at most ``cap``."""
    try:
        return min(cap, max(0.0, float(retry_after)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return min(cap, 2.0**attempt) * random.uniform(0.5, 1.0)


def request_body(
    api: str, model: str, job: Job, sampling: SamplingConfig, sample: int, max_tokens=None
) -> dict:
    """The JSON body of sample ``sample`` of ``job`` (pure)."""
    greedy = sampling.temperature == 0
    body = {
        "model": model,
        "max_tokens": max_tokens or sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": 1.0 if greedy else sampling.top_p,
        "seed": job.seed + sample,
    }
    if api == "completions":
        return {**body, "prompt": job.prompt}
    return {**body, "messages": [{"role": "user", "content": job.question}]}


def completion_of(api: str, reply: dict, opens_think: bool) -> Completion:
    """A server's answer as a completion. A chat answer split by a reasoning parser is joined back into
    the raw form (``<think>`` restored by the caller when the template opened it)."""
    try:
        choice = reply["choices"][0]
        if api == "completions":
            text = choice["text"]
        else:
            message = choice["message"]
            text = message.get("content") or ""
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            if reasoning:
                text = ("" if opens_think else "<think>\n") + f"{reasoning}\n</think>\n\n{text}"
        tokens = (reply.get("usage") or {}).get("completion_tokens")
    except (KeyError, IndexError, TypeError) as err:
        raise ServerError(200, f"unexpected answer ({type(err).__name__}: {err})") from None
    reason = "length" if choice.get("finish_reason") == "length" else "stop"
    return Completion(text, reason, int(tokens) if tokens is not None else -1)


class Client:
    """POSTs JSON to ``endpoint`` with the API key; failures as ``ServerError``."""

    def __init__(self, endpoint: str, api_key: str | None):
        self.endpoint = endpoint.rstrip("/")
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def post(self, path: str, body: dict, timeout: float = TIMEOUT_S) -> dict:
        data = json.dumps(body).encode()
        request = urllib.request.Request(self.endpoint + path, data=data, headers=self.headers, method="POST")
        return self._send(request, timeout)

    def get(self, path: str, timeout: float = 30.0) -> dict:
        return self._send(urllib.request.Request(self.endpoint + path, headers=self.headers), timeout)

    def _send(self, request: urllib.request.Request, timeout: float) -> dict:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as err:
            raise ServerError(err.code, _detail(err.read()), err.headers.get("Retry-After")) from None
        except urllib.error.URLError as err:
            raise ServerError(None, str(err.reason)) from None
        except (TimeoutError, ConnectionError, OSError) as err:
            raise ServerError(None, f"{type(err).__name__}: {err}") from None
        except json.JSONDecodeError as err:
            raise ServerError(200, f"not JSON ({err})") from None

    def call(self, path: str, body: dict, attempts: int = ATTEMPTS, unreachable_too: bool = True) -> dict:
        """``post`` with retries of what a busy or restarting server answers (and, unless told not to,
        of no answer at all: a server restarting mid-run)."""
        for attempt in range(attempts):
            try:
                return self.post(path, body)
            except ServerError as err:
                last = attempt == attempts - 1
                if not retryable(err) or last or (err.status is None and not unreachable_too):
                    raise
                time.sleep(retry_delay(attempt, err.retry_after))
        raise AssertionError("unreachable")


def _detail(raw: bytes) -> str:
    """The message of an error body: OpenAI's ``error.message``, FastAPI's ``detail``, or the text."""
    text = raw.decode(errors="replace").strip()
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return " ".join(text.split())[:200] or "(empty answer)"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])
    return str(error or body)[:200]


class OpenAIGenerator:
    """Samples through a server; ``connect`` (the probe) must run first."""

    def __init__(self, g: Generation, opens_think: bool, tokenizer=None):
        """``tokenizer`` counts a sample's tokens where the server's answer has no ``usage``."""
        key = os.environ.get(g.api_key_env) if g.api_key_env else None
        self.tokenizer = tokenizer
        self.client = Client(g.endpoint or "", key)
        self.model = g.model
        self.concurrency = g.concurrency or CONCURRENCY
        self.opens_think = opens_think
        self.api = "completions"

    def connect(self, probe: Job) -> str:
        """One tiny request per API: which one the server has; one-line errors for an unreachable
        server, a refused key or a model the server does not serve."""
        sampling = SamplingConfig(k=1, max_new_tokens=1, temperature=0)
        failures = {}
        for api in ("completions", "chat"):
            path = "/completions" if api == "completions" else "/chat/completions"
            try:
                body = request_body(api, self.model, probe, sampling, 0)
                self.client.call(path, body, attempts=4, unreachable_too=False)  # a server loading: 503
            except ServerError as err:
                where = self.client.endpoint
                if err.status is None:
                    raise OffcurateError(
                        f"--endpoint {where}: cannot reach the server ({err.detail}); is it running, "
                        "and does the URL end in /v1?"
                    ) from None
                if err.status in (401, 403):
                    raise OffcurateError(f"--endpoint {where}: the server refused the API key ({err}); "
                                         "give it with --api-key-env VAR") from None  # fmt: skip
                if err.status in (404, 405) and err.detail in _ROUTE_MISSING:
                    failures[api] = str(err)
                    continue  # this server has no such route: try the other API
                raise OffcurateError(
                    f"--model {self.model}: the server at {where} refused it ({err}){self._served()}"
                ) from None
            self.api = api
            return api
        raise OffcurateError(
            f"--endpoint {self.client.endpoint}: neither /completions nor /chat/completions answers "
            f"({failures['completions']}); is the URL the server's /v1?"
        )

    def _served(self) -> str:
        try:
            names = [m["id"] for m in self.client.get("/models").get("data", [])]
        except (ServerError, KeyError, TypeError, AttributeError):
            return ""
        return f"; it serves: {', '.join(names)}" if names else ""

    def stream(self, jobs: Sequence[Job], sampling: SamplingConfig) -> Iterator[tuple[int, list[Completion]]]:
        path = "/completions" if self.api == "completions" else "/chat/completions"
        tasks: queue.Queue = queue.Queue()
        results: queue.Queue = queue.Queue()

        def worker() -> None:
            while (task := tasks.get()) is not None:
                index, sample = task
                body = request_body(self.api, self.model, jobs[index], sampling, sample)
                try:
                    reply = completion_of(self.api, self.client.call(path, body), self.opens_think)
                except ServerError as err:
                    qid = jobs[index].question_id
                    reply = OffcurateError(f"{self.client.endpoint}: question {qid} failed ({err})")
                results.put((index, sample, reply))

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.concurrency)]
        for thread in threads:
            thread.start()
        pending = ((i, s) for i in range(len(jobs)) for s in range(sampling.k))
        outstanding, got = 0, {}
        try:
            for task in pending:  # keep twice the concurrency queued, never the whole workload
                tasks.put(task)
                outstanding += 1
                while outstanding >= 2 * self.concurrency:
                    outstanding -= 1
                    yield from self._collect(results.get(), got, sampling.k)
            while outstanding:
                outstanding -= 1
                yield from self._collect(results.get(), got, sampling.k)
        finally:  # on an error, drop what is queued so the workers stop after their current request
            while not tasks.empty():
                tasks.get_nowait()
            for _ in threads:
                tasks.put(None)

    def _collect(self, result, got: dict, k: int) -> Iterator[tuple[int, list[Completion]]]:
        index, sample, reply = result
        if isinstance(reply, Exception):
            raise reply
        if reply.tokens < 0 and self.tokenizer is not None:
            tokens = len(self.tokenizer(reply.text, add_special_tokens=False)["input_ids"])
            reply = Completion(reply.text, reply.finish_reason, tokens)
        got.setdefault(index, {})[sample] = reply
        if len(got[index]) == k:
            done = got.pop(index)
            yield index, [done[i] for i in range(k)]
