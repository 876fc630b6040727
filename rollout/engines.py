"""Running the engines of a rollout: one in this process, or ``--data-parallel-size N`` worker processes.

    run_engine(spec, jobs, on_question, generator)         # one engine, here
    run_engines(spec, deal(jobs, n, num_shards), on_question)   # N processes, each its own model

Each engine samples its questions and writes them as they finish into part files of its own in the
hidden ``.OUT.partial`` folder (``parts``); the stage merges them at the end into one output, as from one
engine. Questions are dealt to engines by question hash (``deal``: the hash's quotient by the number of
slices, so a slice's questions still spread over all its engines). With a GPU, engine i sees GPUs
``i*TP .. (i+1)*TP - 1`` (``CUDA_VISIBLE_DEVICES``); on CPU, each gets ``cores / N`` threads.

Workers are spawned (fresh interpreters: CUDA cannot be forked) and not daemonic (vLLM's tensor-parallel
engine starts processes of its own). The first worker error stops the others and is said in one line;
SIGTERM (Slurm's preemption) flushes finished questions before exit, here and in the workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..curate.io.errors import OffcurateError
from ..curate.io.signals import handling
from .generate import Completion, Generation, Generator, Job, open_generator
from .parts import PartWriter
from .plan import Plan

_THINK = "<think>\n"
_POLL_S = 1.0


@dataclass(frozen=True)
class EngineSpec:
    """What every engine needs, picklable for a worker process."""

    source: str  # model folder or Hub id
    generation: Generation
    plan: Plan
    max_model_len: int | None  # vLLM's context, fitted by the stage
    folder: Path  # the .partial folder
    tag: str  # names this run's part files
    opens_think: bool


def rows_of(job: Job, completions: list[Completion], opens_think: bool) -> dict:
    """Output rows of one question. When the template's generation prompt already opened ``<think>``, the
    stored response gets it back, so a sample cut inside its thinking reads as unfinished, not as answer."""
    k = len(completions)
    return {
        "question_id": [job.question_id] * k,
        "question": [job.question] * k,
        "sample_idx": list(range(k)),
        "response": [(_THINK if opens_think else "") + c.text for c in completions],
        "finish_reason": [c.finish_reason for c in completions],
        "response_tokens": [c.tokens for c in completions],
    }


def deal(jobs: Sequence[Job], engines: int, num_shards: int = 1) -> list[list[Job]]:
    """Jobs per engine by question hash (its first 8 hex digits, as ``--shard-index`` slices): engine
    ``(hash // num_shards) % engines`` (pure)."""
    dealt: list[list[Job]] = [[] for _ in range(engines)]
    for job in jobs:
        dealt[(question_hash(job.question_id) // num_shards) % engines].append(job)
    return dealt


def question_hash(question_id: str) -> int:
    """The 32-bit hash every slicing of questions uses (``vote --shard-index`` included)."""
    try:
        return int(question_id[:8], 16)
    except ValueError:
        import zlib

        return zlib.crc32(question_id.encode())


def load_generator(spec: EngineSpec, tokenizer=None) -> Generator:
    return open_generator(
        spec.source, spec.generation, spec.plan, tokenizer, spec.max_model_len, spec.opens_think
    )


def run_engine(
    spec: EngineSpec,
    jobs: Sequence[Job],
    on_question: Callable[[int], None],
    generator: Generator,
    index: int = 0,
) -> None:
    """Sample ``jobs`` with ``generator``, writing each question as it finishes; ``on_question(tokens)``."""
    with PartWriter(spec.folder, f"{spec.tag}-e{index}") as writer:
        for position, completions in generator.stream(jobs, spec.generation.sampling):
            job = jobs[position]
            writer.add(rows_of(job, completions, spec.opens_think))
            on_question(sum(max(c.tokens, 0) for c in completions))


def run_engines(
    spec: EngineSpec,
    dealt: list[list[Job]],
    on_question: Callable[[int], None],
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """One worker process per engine; ``on_ready()`` once every engine has loaded its model; returns when
    all are done, raises the first error in one line."""
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    envs = engine_envs(spec.plan, len(dealt))
    workers = [
        context.Process(target=_worker, args=(spec, i, jobs, events, envs[i]), name=f"offcurate-engine-{i}")
        for i, jobs in enumerate(dealt)
    ]
    for worker in workers:
        worker.start()
    finished: set[int] = set()
    ready: set[int] = set()
    try:
        while len(finished) < len(workers):
            try:
                kind, index, payload = events.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [i for i, w in enumerate(workers) if i not in finished and not w.is_alive()]
                if dead and events.empty():
                    code = workers[dead[0]].exitcode
                    raise OffcurateError(
                        f"engine {dead[0]} of {len(workers)} died (exit code {code})"
                    ) from None
                continue
            if kind == "question":
                on_question(payload)
            elif kind == "ready":
                ready.add(index)
                if len(ready) == len(workers):
                    on_ready()
            elif kind == "done":
                finished.add(index)
            else:
                raise OffcurateError(f"engine {index} of {len(workers)}: {payload}")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: the worker flushes what it finished
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
                worker.join()


def engine_envs(plan: Plan, engines: int) -> list[dict[str, str]]:
    """Each engine's environment: its GPUs, or its share of the CPU threads (pure but for os state)."""
    if plan.gpus_per_engine == 0:
        threads = str(max(1, (os.cpu_count() or 1) // engines))
        return [{"OMP_NUM_THREADS": threads, "OFFCURATE_THREADS": threads} for _ in range(engines)]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = visible.split(",") if visible else [str(i) for i in range(plan.gpus_per_engine * engines)]
    tp = plan.gpus_per_engine
    return [{"CUDA_VISIBLE_DEVICES": ",".join(devices[i * tp : (i + 1) * tp])} for i in range(engines)]


def _worker(spec: EngineSpec, index: int, jobs: list[Job], events, env: dict[str, str]) -> None:
    os.environ.update(env)
    try:
        with term_as_exit():
            if "OFFCURATE_THREADS" in env:
                import torch

                torch.set_num_threads(int(env["OFFCURATE_THREADS"]))
            generator = load_generator(spec)
            events.put(("ready", index, None))
            run_engine(spec, jobs, lambda tokens: events.put(("question", index, tokens)), generator, index)
        events.put(("done", index, None))
    except OffcurateError as err:
        events.put(("error", index, str(err)))
    except BaseException as err:  # a bug or a crash: its traceback in this worker's stderr, one line above
        traceback.print_exc()
        events.put(("error", index, f"{type(err).__name__}: {err}"))


@contextlib.contextmanager
def term_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit here (in the main thread), so ``finally`` blocks flush finished work."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    with handling(signal.SIGTERM, stop):
        yield
