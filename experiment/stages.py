"""The stages of an experiment, each the ordinary command's code run into its own folder under the run.

    RUN/data/            the data a writing kind made (raw/, benchmarks/)      kinds.DATA_KINDS[...].write
    RUN/curate/          raw/ math/ voted/ stats/ and pipeline.json            offcurate pipeline
    RUN/base-model/      a built base model (tiny-random, ...)                 kinds.MODEL_BUILDERS
    RUN/base-rollouts/   the base model's samples on the labeled questions     offcurate rollout
    RUN/figure2/         stats with Figure 2 (base pass rate, all-positive)    offcurate stats --base-rollouts
    RUN/mix/             the training mix                                      offcurate sample
    RUN/train/NAME/      one folder per arm (checkpoints, final/)              offcurate train (or torchrun)
    RUN/eval/NAME/       per model: NAME-responses/ (samples) and NAME/ (scores)  offcurate eval --model
    RUN/teacher-logprobs/NAME/  the teacher traces' log-probs under each model  trace_logprob
    RUN/comparison/      base and every arm per benchmark, radar.png           offcurate eval --compare
    RUN/effects/         teacher-trace log-probs, pass@1 by base pass rate     experiment/effects.py

Every stage but train runs in this process: it calls what the command calls, so the output layouts are the
commands' own, and it skips 2-10 s of interpreter and torch start-up per stage. An arm with ``nproc > 1``
runs as a subprocess under ``torchrun`` (one process per rank is the only way to run it). ``Stage.command``
is the equivalent command line, printed in the plan and recorded in experiment.json.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..curate.answers.pool import die_with_parent
from ..curate.io.errors import OffcurateError
from ..curate.io.output import atomic_output
from ..curate.io.report import console, summary_table
from .kinds import BENCHMARKS, DATA_KINDS, MODEL_BUILDERS, RAW
from .layout import Layout
from .recipe import BASE, Arm, Sampling
from .train_options import train_argv, train_kwargs

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]  # = `torchrun --standalone`


@dataclass
class Stage:
    """One step of the run: ``run`` writes ``folder``; ``finished`` says an earlier run completed it
    (besides the run's own record, which decides for train folders); ``partial`` that one began it."""

    name: str
    folder: Path
    command: str
    run: Callable[[], None]
    finished: Callable[[], bool]
    partial: Callable[[], bool] = lambda: False


def plan(layout: Layout) -> list[Stage]:
    """The stages the recipe asks for, in order."""
    recipe = layout.recipe
    kind = DATA_KINDS[recipe.data.kind]
    stages = []
    if kind.write is not None:
        stages.append(_data_stage(layout))
    if kind.curate:
        stages.append(_curate_stage(layout))
    if recipe.builds_model:
        stages.append(_model_stage(layout))
    if recipe.base_rollouts is not None:
        stages += [_rollout_stage(layout), _figure2_stage(layout)]
    if recipe.mix is not None:
        stages.append(_mix_stage(layout))
    stages += [_train_stage(layout, arm) for arm in recipe.arms]
    models = (BASE, *(a.name for a in recipe.arms))
    stages += [_eval_stage(layout, name) for name in models]
    if recipe.teacher_logprobs is not None:
        stages += [_teacher_logprob_stage(layout, name) for name in models]
    stages += [_compare_stage(layout), _effects_stage(layout)]
    return stages


def _exists(folder: Path) -> Callable[[], bool]:
    return folder.is_dir


def _cmd(head: str, *args: object) -> str:
    """``head`` (words of ours, split on spaces) then ``args`` (paths, values: quoted as needed)."""
    return shlex.join([*head.split(), *(str(a) for a in args if a is not None and a != "")])


def _data_stage(layout: Layout) -> Stage:
    recipe = layout.recipe

    def run() -> None:
        with atomic_output(layout.data) as tmp:
            DATA_KINDS[recipe.data.kind].write(tmp, recipe.seed, **recipe.data.options)
        if not any((layout.data / RAW).rglob("*.parquet")):
            raise OffcurateError(f"{layout.data}: data kind {recipe.data.kind} wrote no {RAW}/*.parquet")

    options = "".join(f", {k}={v!r}" for k, v in recipe.data.options.items())
    command = f"(data kind {recipe.data.kind}: raw shards and benchmarks, seed {recipe.seed}{options})"
    return Stage("data", layout.data, command, run, _exists(layout.data))


def _curate_stage(layout: Layout) -> Stage:
    from ..curate.pipeline import RECORD

    data = layout.recipe.data
    raw = {"sample": None, "raw": data.path}.get(data.kind, layout.data / RAW)

    def run() -> None:
        from ..curate.pipeline import run_pipeline

        reports = run_pipeline(layout.curate, input_dir=raw, workers=data.workers, timeout=data.timeout)
        for report in reports:
            report.print()
        console.print(summary_table(reports))

    def finished() -> bool:
        import json

        try:
            return bool(json.loads((layout.curate / RECORD).read_text()).get("complete"))
        except (OSError, ValueError):
            return False

    command = _cmd(
        "offcurate pipeline -o", layout.curate, "-i" if raw else "", raw, "--timeout", data.timeout
    )
    partial = (layout.curate / RECORD).is_file
    return Stage("curate", layout.curate, command, run, finished, partial)


def _model_stage(layout: Layout) -> Stage:
    recipe, folder = layout.recipe, Path(layout.base_model)

    def run() -> None:
        with atomic_output(folder) as tmp:
            MODEL_BUILDERS[recipe.model](layout.data, tmp, recipe.seed)

    command = f"(model builder {recipe.model}, seed {recipe.seed})"
    if recipe.model == "tiny-random":
        command = _cmd("python -m offcurate.train.tiny", folder, "--seed", recipe.seed)
    return Stage("base-model", folder, command, run, _exists(folder))


def _generation(model: str, s: Sampling, seed: int):
    from ..rollout import options as opts

    engine = {name: getattr(s, name) for name in ENGINE_OPTIONS}
    sampling = (
        s.k,
        s.max_new_tokens,
        s.temperature,
        s.top_p,
        s.batch_size,
        seed,
        s.backend,
        s.device,
        s.dtype,
    )
    return opts.generation(model, *sampling, **engine)


# the engine's options, named as `opts.generation` and `eval_command` take them (flags: dashes)
ENGINE_OPTIONS = (
    "tensor_parallel_size", "data_parallel_size", "max_model_len", "gpu_memory_utilization", "endpoint",
    "api_key_env", "concurrency",
)  # fmt: skip
_ENGINE_DEFAULTS = {"tensor_parallel_size": 1, "data_parallel_size": 1}


def _sampling_flags(s: Sampling, seed: int) -> list[object]:
    engine = []
    for name in ENGINE_OPTIONS:
        value = getattr(s, name)
        if value is not None and value != _ENGINE_DEFAULTS.get(name):
            engine += [f"--{name.replace('_', '-')}", value]
    return [
        "-k", s.k, "--max-new-tokens", s.max_new_tokens, "--temperature", s.temperature, "--top-p", s.top_p,
        "--batch-size", s.batch_size, "--backend", s.backend, "--device", s.device, "--dtype", s.dtype,
        *engine, "--seed", seed,
    ]  # fmt: skip


def _rollout_stage(layout: Layout) -> Stage:
    recipe, out = layout.recipe, layout.root / "base-rollouts"
    r = recipe.base_rollouts

    def run() -> None:
        from ..rollout.stage import run_rollout

        generation = _generation(layout.base_model, r, recipe.seed)
        run_rollout(layout.voted, out, generation, select=r.questions, limit=r.limit, resume=True).print()

    command = _cmd(
        "offcurate rollout -i", layout.voted, "-o", out, "--model", layout.base_model,
        *_sampling_flags(r, recipe.seed), "--questions", r.questions,
        *(["--limit", r.limit] if r.limit else []), "--resume",
    )  # fmt: skip
    partial = (out.parent / f".{out.name}.partial").is_dir
    return Stage("base-rollouts", out, command, run, _exists(out), partial)


def _figure2_stage(layout: Layout) -> Stage:
    data, rollouts = layout.recipe.data, layout.root / "base-rollouts"

    def run() -> None:
        from ..curate.stats import run_stats

        run_stats(
            layout.voted, layout.figure2, base_rollouts=rollouts, workers=data.workers, timeout=data.timeout
        ).print()

    command = _cmd("offcurate stats -i", layout.voted, "-o", layout.figure2, "--base-rollouts", rollouts)
    return Stage("figure2", layout.figure2, command, run, _exists(layout.figure2))


def _shares(shares: dict[str, float] | None) -> str | None:
    return None if shares is None else ",".join(f"{k}={v:g}" for k, v in shares.items())


def _mix_stage(layout: Layout) -> Stage:
    recipe, out = layout.recipe, layout.root / "mix"
    m = recipe.mix
    base = layout.figure2 if m.bucket_by == "base_pass_rate" else None
    edges = None if m.edges is None else ",".join(f"{e:g}" for e in m.edges)

    def run() -> None:
        from ..curate.sample import run_sample

        run_sample(
            layout.voted, out, bucket_by=m.bucket_by, edges=None if m.edges is None else tuple(m.edges),
            weights=_shares(m.weights), counts=_shares(m.counts), total=m.questions,
            max_per_question=m.max_per_question, base=base, seed=recipe.seed,
        ).print()  # fmt: skip

    command = _cmd(
        "offcurate sample -i", layout.voted, "-o", out, "--bucket-by", m.bucket_by,
        *(["--edges", edges] if edges else []), *(["--weights", _shares(m.weights)] if m.weights else []),
        *(["--counts", _shares(m.counts)] if m.counts else []),
        *(["--questions", m.questions] if m.questions else []),
        *(["--max-per-question", m.max_per_question] if m.max_per_question else []),
        *(["--base", base] if base else []), "--seed", recipe.seed,
    )  # fmt: skip
    return Stage("mix", out, command, run, _exists(out))


def _train_stage(layout: Layout, arm: Arm) -> Stage:
    options = layout.recipe.arm_options(arm)
    out = layout.arm(arm.name)
    where = ["-i", layout.train_input, "-o", out, "--model", layout.base_model]
    launcher = [*TORCHRUN, "--nproc-per-node", str(arm.nproc)] if arm.nproc > 1 else None

    def checkpointed() -> bool:
        from ..train.checkpoint import list_checkpoints

        return bool(list_checkpoints(out))

    def run() -> None:
        resume = checkpointed()
        if out.exists() and not resume:  # killed before its first checkpoint: nothing worth keeping
            shutil.rmtree(out)
        if launcher is None:
            from ..train.command import train

            train(
                model=layout.base_model, input=layout.train_input, output=out, resume=resume,
                **train_kwargs(options),
            )  # fmt: skip
            return
        argv = [*launcher, "-m", "offcurate", "train", *map(str, where), *train_argv(options)]
        argv += ["--resume"] if resume else []
        console.print(f"[dim]$ {shlex.join(argv)}[/]", highlight=False, soft_wrap=True)
        parent = os.getpid()  # torchrun dies with this process, kill -9 included (it stops its ranks)
        done = subprocess.run(argv, preexec_fn=lambda: die_with_parent(parent))
        if done.returncode != 0:
            raise OffcurateError(
                f"train/{arm.name}: torchrun exited with status {done.returncode} (its output is above); "
                "run the experiment again to resume the arm from its last checkpoint"
            )

    prefix = f"torchrun --standalone --nproc-per-node {arm.nproc} -m " if launcher else ""
    command = _cmd(prefix + "offcurate train", *where, *train_argv(options))
    return Stage(f"train/{arm.name}", out, command, run, lambda: False, checkpointed)


def _eval_stage(layout: Layout, name: str) -> Stage:
    recipe = layout.recipe
    e, out, responses = recipe.eval, layout.eval(name), layout.responses(name)

    def run() -> None:
        from ..eval.command import eval_command

        benchmarks = layout.benchmarks()
        if responses.is_dir():  # sampled by an earlier run, killed before scoring: score those samples
            eval_command(benchmark=benchmarks, responses=responses, output=out, workers=e.workers,
                         timeout=e.timeout)  # fmt: skip
            return
        g = _generation(layout.model_of(name), e, recipe.seed)
        s = g.sampling
        eval_command(
            benchmark=benchmarks, responses=responses, output=out, workers=e.workers, timeout=e.timeout,
            model=g.model, k=s.k, max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p,
            batch_size=g.batch_size, backend=g.backend, device=g.device, dtype=g.dtype, seed=g.seed,
            resume=True, **{name: getattr(e, name) for name in ENGINE_OPTIONS},
        )  # fmt: skip

    brought = layout.data / BENCHMARKS / "*.jsonl" if DATA_KINDS[recipe.data.kind].brings_benchmarks else None
    files = [f for b in [*([brought] if brought else []), *e.benchmarks] for f in ("-b", b)]
    command = _cmd(
        "offcurate eval", *files, "--model", layout.model_of(name), *_sampling_flags(e, recipe.seed),
        "-r", responses, "-o", out, "--resume",
    )  # fmt: skip

    def partial() -> bool:
        return responses.is_dir() or (responses.parent / f".{responses.name}.partial").is_dir()

    return Stage(f"eval/{name}", out, command, run, _exists(out), partial)


def _compare_stage(layout: Layout) -> Stage:
    names = [BASE, *(a.name for a in layout.recipe.arms)]
    folders = [layout.eval(n) for n in names]

    def run() -> None:
        from ..eval.compare import compare

        compare(folders, layout.comparison)  # printed with the experiment's summary

    command = _cmd("offcurate eval --compare", *folders, "-o", layout.comparison)
    return Stage("comparison", layout.comparison, command, run, _exists(layout.comparison))


def _teacher_logprob_stage(layout: Layout, name: str) -> Stage:
    t, out = layout.recipe.teacher_logprobs, layout.teacher_logprobs(name)
    model = layout.model_of(name)

    def run() -> None:
        from ..train.trace_logprob import write_trace_logprobs

        with atomic_output(out) as tmp:
            write_trace_logprobs(model, layout.voted, tmp, t.questions, t.max_len, t.device)

    command = _cmd(
        "python -m offcurate.train.trace_logprob", layout.voted, model,
        *(["--questions", t.questions] if t.questions else []), "--max-len", t.max_len, "--device", t.device,
        "-o", out,
    )  # fmt: skip
    return Stage(f"teacher-logprobs/{name}", out, command, run, _exists(out))


def _effects_stage(layout: Layout) -> Stage:
    names = [BASE, *(a.name for a in layout.recipe.arms)]
    out = layout.effects

    def run() -> None:
        from .effects import write_effects

        logprobs = {}
        if layout.recipe.teacher_logprobs is not None:
            logprobs = {n: layout.teacher_logprobs(n) for n in names}
        evals = {n: layout.eval(n) for n in names}
        with atomic_output(out) as tmp:
            write_effects(tmp, logprobs, evals, layout.voted, layout.figure2)

    command = "(teacher-trace log-probs and pass@1 by base pass rate: experiment/effects.py)"
    return Stage("effects", out, command, run, _exists(out))
