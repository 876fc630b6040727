"""The ``offcurate`` command: one Typer app, one ``main`` that turns known errors into a one-line message.

    offcurate pipeline -o runs/demo          # the whole chain on the embedded sample
    offcurate --help                         # every stage, what it reads and writes

Heavy imports (polars, math-verify, torch) happen inside the commands so ``--help`` stays instant.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from .curate.io.checks import check_counts, check_positive
from .curate.io.errors import OffcurateError, ReportedElsewhere
from .eval.command import eval_command
from .experiment.command import experiment_command
from .rollout import options as opts
from .train.command import train

# seconds a rank other than 0 waits before saying an error: long enough for torchrun to stop it once rank 0
# has said the same error (it checks every 0.1 s), short beside a failed run
RANK_ERROR_GRACE_S = 5.0
# seconds a rank waits, silent, when another rank says the error (train/distributed.agree): torchrun stops
# it as soon as that rank has said it and left; the wait only ends a run whose speaker hangs
QUIET_RANK_WAIT_S = 60.0

app = typer.Typer(
    name="offcurate",
    help=(
        "Teacher traces -> majority-vote labels -> off-policy GRPO.\n\n"
        "Stages chain through folders of Parquet shards: download -> filter -> vote -> stats, "
        "then train. `offcurate pipeline -o runs/demo` runs the curation chain on the embedded sample."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


InputDir = Annotated[
    Path, typer.Option("-i", "--input", help="Folder of *.parquet shards (read recursively, streamed).")
]
OutputDir = Annotated[Path, typer.Option("-o", "--output", help="Output folder (written atomically).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing non-empty output folder.")]
Edges = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated increasing bucket edges. Defaults: rates 0.5,1.0 -> hard/medium/easy "
        "(easy = all-positive); difficulty 4,7 -> easy/medium/hard."
    ),
]
Seed = Annotated[int, typer.Option(help="Seed: the same seed and input give the same result.")]


@app.command()
def download(
    output: OutputDir = Path("data/raw"),
    repo_id: Annotated[
        str,
        typer.Option(
            "--dataset",
            "--repo-id",
            help="Hub dataset repository: open-thoughts/OpenThoughts3-1.2M, open-r1/OpenR1-Math-220k, "
            "nvidia/OpenMathReasoning, zwhe99/DeepMath-103K or any other (then `filter --format`).",
        ),
    ] = "open-thoughts/OpenThoughts3-1.2M",
    config: Annotated[
        str | None,
        typer.Option(help="Only the files of this config of the dataset card (e.g. `default`, `extended`)."),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Only the files of this split of --config (e.g. `cot`).")
    ] = None,
    revision: Annotated[
        str,
        typer.Option(help="Branch, tag or commit; resolved to a commit sha and recorded in download.json."),
    ] = "main",
    max_shards: Annotated[
        int | None, typer.Option(help="Fetch only the first N shards (the full set is ~28 GB).")
    ] = None,
    sample: Annotated[
        bool, typer.Option("--sample", help="Write the embedded sample instead (no network).")
    ] = False,
    format: Annotated[
        str,
        typer.Option(
            help="With --sample: `openthoughts3` (the default sample) or `openr1-math` (a small sample "
            "with gold answers)."
        ),
    ] = "openthoughts3",
    endpoint: Annotated[str | None, typer.Option(hidden=True, help="Hub endpoint (tests).")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Fetch a teacher-trace dataset's Parquet shards from the Hugging Face Hub, pinned (resumable).

    The revision is resolved to a commit sha once and every shard is fetched at it. Shards already present
    with the right size are skipped, so an interrupted download picks up where it stopped. Honours
    HF_TOKEN, HF_HOME and HF_HUB_OFFLINE. Writes the shards under their repo paths, download.json and a
    dataset card.
    """
    from .curate import download as dl

    if sample:
        if config or split:
            raise typer.BadParameter("--config/--split select Hub files; --sample writes the embedded one")
        dl.write_sample(output, overwrite=overwrite, format=format).print()
    else:
        if format != "openthoughts3":
            raise typer.BadParameter("--format goes with --sample (downloads keep the layout of the Hub)")
        dl.download(
            output,
            repo_id=repo_id,
            config=config,
            split=split,
            revision=revision,
            max_shards=max_shards,
            endpoint=endpoint,
            overwrite=overwrite,
        ).print()


@app.command("filter")
def filter_(
    input: InputDir = Path("data/raw"),
    output: OutputDir = Path("data/math"),
    domain: Annotated[
        list[str],
        typer.Option(
            "--domain", metavar="<str>", help="Domains to keep (repeat for several; OpenThoughts3 only)."
        ),
    ] = ["math"],  # noqa: B006
    workers: Annotated[
        int | None, typer.Option(help="Threads reading shards in parallel (default: one per core).")
    ] = None,
    format: Annotated[
        str,
        typer.Option(
            help="Input layout: `openthoughts3`, `openr1-math` (open-r1/OpenR1-Math-220k), "
            "`openmathreasoning` (nvidia/OpenMathReasoning), `deepmath` (zwhe99/DeepMath-103K) or "
            "`columns` (any set: give --question-col, --response-col, ...)."
        ),
    ] = "openthoughts3",
    question_col: Annotated[str | None, typer.Option(help="--format columns: the question column.")] = None,
    response_col: Annotated[
        str | None,
        typer.Option(
            help="--format columns: the trace column (a string, or a list of strings: one per trace)."
        ),
    ] = None,
    gold_col: Annotated[
        str | None, typer.Option(help="--format columns: the gold answer column (optional).")
    ] = None,
    difficulty_col: Annotated[
        str | None, typer.Option(help="--format columns: a numeric difficulty column (optional).")
    ] = None,
    source_col: Annotated[
        str | None, typer.Option(help="--format columns: a source column (optional).")
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Keep the math traces: one row per trajectory with a stable question id (and the gold, where the set
    has one).

    OpenThoughts3 (the default): columns difficulty, source, domain, conversations (roles human/user then
    gpt/assistant). Writes question_id, sample_idx, question, response, source, difficulty, finished; the
    sets with reference answers add `gold` (OpenR1-Math-220k also its per-trace `dataset_verdict`).
    Rows that cannot be used are dropped and counted by reason; identical trajectories are kept. Each
    shard is read once; the output is the same for any number of workers.
    """
    from .curate.filter import run_filter

    check_counts(("--workers", workers))
    mapping = {
        "question": question_col,
        "response": response_col,
        "gold": gold_col,
        "difficulty": difficulty_col,
        "source": source_col,
    }
    run_filter(
        input,
        output,
        domains=tuple(domain),
        overwrite=overwrite,
        workers=workers,
        fmt=format,
        mapping=mapping,
    ).print()


@app.command()
def vote(
    input: InputDir = Path("data/math"),
    output: OutputDir = Path("data/voted"),
    workers: Annotated[int | None, typer.Option(help="Labeling processes (default: all cores).")] = None,
    timeout: Annotated[
        float,
        typer.Option(
            help="Seconds allowed to read an answer (parse + evaluate) or to compare two; an answer that "
            "cannot be read in time gets no answer anywhere, a slow comparison drops the longer answer "
            "from that question."
        ),
    ] = 2.0,
    shard_index: Annotated[int, typer.Option(help="Which slice of the question-hash space to label.")] = 0,
    num_shards: Annotated[
        int, typer.Option(help="Split questions into this many slices (one job each; concatenate outputs).")
    ] = 1,
    min_gold_agreement: Annotated[
        float | None,
        typer.Option(
            help="On a set with gold answers: exit 2 (after writing the output) when the pseudo-label "
            "accuracy (labeled questions whose majority answer the gold accepts) is below this, e.g. 0.9."
        ),
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Majority-vote pseudo-labels: extract answers, cluster equivalent ones, reward each trajectory.

    The final answer is the last `\\boxed{}` after `</think>` (or an explicit "final answer is ..."); answers
    are grouped with math-verify (1/2 = 0.5 = \\frac12, x=3 = 3). Reward 1.0 in the largest class, 0.0
    otherwise, null for ties and answerless questions. Writes trajectories/ and questions/ shards. Where
    the input has a `gold` column, every trace also gets `gold_reward` and the summary the pseudo-label
    accuracy.
    """
    from .curate.vote import check_gold_agreement, run_vote

    check_counts(("--workers", workers), ("--num-shards", num_shards))
    check_positive(("--timeout", timeout))
    report = run_vote(
        input,
        output,
        workers=workers,
        timeout=timeout,
        shard_index=shard_index,
        num_shards=num_shards,
        overwrite=overwrite,
        min_gold_agreement=min_gold_agreement,
    )
    report.print()
    if min_gold_agreement is not None:
        check_gold_agreement(report, min_gold_agreement)


@app.command()
def stats(
    input: InputDir = Path("data/voted"),
    output: OutputDir = Path("data/stats"),
    bucket_by: Annotated[
        str,
        typer.Option(
            help="Bucket by teacher `pass_rate`, teacher `vote_share`, the dataset's `difficulty`, or "
            "`gold_pass_rate` (teacher traces right by the gold, on a set with gold answers)."
        ),
    ] = "pass_rate",
    edges: Edges = None,
    base_rollouts: Annotated[
        Path | None,
        typer.Option(
            help="Folder of base-model samples (question_id or question, response): draws Figure 2."
        ),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Scoring processes (default: all cores).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per math-verify step when scoring rollouts.")] = 2.0,
    overwrite: Overwrite = False,
) -> None:
    """All-positive statistics, difficulty buckets and figures from a `vote` output.

    Writes by_group.parquet (per source x difficulty and overall), pass_rate_hist.parquet, buckets.parquet
    and PNG figures. With --base-rollouts: the base model's pass rate on questions where every teacher
    trace is right (the blog's Figure 2), as figure2.parquet and figure2.png. On a set with gold answers:
    the pseudo-label accuracy by pass rate, difficulty and vote share (gold_*.parquet, a PNG), and the
    agreement with the set's own verdicts.
    """
    from .curate.stats import run_stats

    check_counts(("--workers", workers))
    check_positive(("--timeout", timeout))
    run_stats(
        input,
        output,
        bucket_by=bucket_by,
        edges=_parse_edges(edges),
        base_rollouts=base_rollouts,
        workers=workers,
        timeout=timeout,
        overwrite=overwrite,
    ).print()


@app.command()
def pipeline(
    output: OutputDir = Path("runs/demo"),
    input: Annotated[
        Path | None,
        typer.Option("-i", "--input", help="Raw shards of --format (default: its embedded sample)."),
    ] = None,
    format: Annotated[
        str,
        typer.Option(
            help="Layout of the raw shards (see `filter --format`); `openr1-math` without -i runs the "
            "embedded sample with gold answers."
        ),
    ] = "openthoughts3",
    workers: Annotated[
        int | None, typer.Option(help="filter threads and vote processes (default: one per core).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per math-verify parse/compare.")] = 2.0,
    base_rollouts: Annotated[
        Path | None, typer.Option(help="Base-model samples for Figure 2 (see `offcurate stats`).")
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Run download (embedded sample) -> filter -> vote -> stats into OUTPUT/{raw,math,voted,stats}.

    Needs no network: by default it starts from the embedded OpenThoughts3-shaped sample. Each stage folder
    is written atomically and OUTPUT/pipeline.json says whether the run is complete. Interrupted? Run the same
    command again: finished stages are kept and the rest run (other options are refused; --overwrite starts
    over).
    """
    from .curate.io.report import console, summary_table
    from .curate.pipeline import run_pipeline

    check_counts(("--workers", workers))
    check_positive(("--timeout", timeout))
    reports = run_pipeline(
        output,
        input_dir=input,
        fmt=format,
        workers=workers,
        timeout=timeout,
        base_rollouts=base_rollouts,
        overwrite=overwrite,
    )
    for report in reports:
        report.print()
    console.print(summary_table(reports))


@app.command()
def rollout(
    model: opts.Model = None,
    input: Annotated[
        Path, typer.Option("-i", "--input", help="A vote output (its questions/), or shards with `question`.")
    ] = Path("data/voted"),
    output: OutputDir = Path("data/rollouts"),
    k: opts.K = 8,
    max_new_tokens: opts.MaxNewTokens = 4096,
    temperature: opts.Temperature = 0.6,
    top_p: opts.TopP = 0.95,
    questions: Annotated[
        str, typer.Option(help="Which questions of a vote output: `ok`, `all-positive` or `all`.")
    ] = "ok",
    limit: Annotated[
        int | None, typer.Option(help="Only the first N questions (by question id); N >= 1.")
    ] = None,
    batch_size: opts.BatchSize = 64,
    backend: opts.Backend = "auto",
    device: opts.Device = "auto",
    dtype: opts.DType = "auto",
    seed: opts.Seed = 0,
    resume: opts.Resume = False,
    overwrite: Overwrite = False,
    tensor_parallel_size: opts.TensorParallelSize = 1,
    data_parallel_size: opts.DataParallelSize = 1,
    max_model_len: opts.MaxModelLen = None,
    gpu_memory_utilization: opts.GpuMemoryUtilization = None,
    prompts_in_flight: opts.PromptsInFlight = None,
    endpoint: opts.Endpoint = None,
    api_key_env: opts.ApiKeyEnv = None,
    concurrency: opts.Concurrency = None,
    shard_index: opts.ShardIndex = 0,
    num_shards: opts.NumShards = 1,
) -> None:
    """Sample k responses per question from a model: the base-model rollouts behind Figure 2.

    The question is the user turn of the model's chat template. Writes question_id, question, sample_idx,
    response, finish_reason, response_tokens shards: what `stats --base-rollouts` and `sample --bucket-by
    base_pass_rate` build on. Interrupted? Run the same command with --resume. A question's samples are
    seeded by (seed, question id), so slices, engines and resumed runs draw the samples of one run.

    On GPUs: vLLM, one engine per `--tensor-parallel-size` GPUs, `--data-parallel-size` engines (8 GPUs:
    TP x DP = 8). Tensor parallelism as computed for 32K-token samples on 80 GB GPUs (bf16, 16 samples
    of 32K in flight per engine; README has the table): 1.5B and 7B: TP 1 (DP 8); 32B: TP 4 (DP 2).
    Many nodes: `--shard-index I --num-shards K`, the K outputs under one parent folder.
    """
    from .rollout.stage import run_rollout

    if model is None:
        raise typer.BadParameter("give the model to sample (a local folder or Hub id)", param_hint="--model")
    check_counts(("--limit", limit))
    run = opts.generation(
        model, k, max_new_tokens, temperature, top_p, batch_size, seed, backend, device, dtype,
        tensor_parallel_size=tensor_parallel_size, data_parallel_size=data_parallel_size,
        max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
        prompts_in_flight=prompts_in_flight, endpoint=endpoint, api_key_env=api_key_env,
        concurrency=concurrency, shard_index=shard_index, num_shards=num_shards,
    )  # fmt: skip
    run_rollout(input, output, run, select=questions, limit=limit, resume=resume, overwrite=overwrite).print()


@app.command()
def sample(
    input: InputDir = Path("data/voted"),
    output: OutputDir = Path("data/mix"),
    bucket_by: Annotated[
        str,
        typer.Option(
            help="`pass_rate` / `vote_share` (teacher), `base_pass_rate` (needs --base), `difficulty`, or "
            "`gold_pass_rate` (teacher traces right by the gold, on a set with gold answers)."
        ),
    ] = "pass_rate",
    edges: Edges = None,
    weights: Annotated[
        str | None,
        typer.Option(help="Shares per bucket, e.g. hard=0.5,medium=0.3,easy=0.2 (split --questions)."),
    ] = None,
    counts: Annotated[
        str | None, typer.Option(help="Questions per bucket, e.g. hard=2000,medium=1000.")
    ] = None,
    total: Annotated[
        int | None,
        typer.Option("--questions", help="Total questions for --weights (default: the most that fit)."),
    ] = None,
    max_per_question: Annotated[
        int | None, typer.Option(help="Keep at most N trajectories per question (seeded random subset).")
    ] = None,
    base: Annotated[
        Path | None, typer.Option(help="A `stats --base-rollouts` output, for --bucket-by base_pass_rate.")
    ] = None,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """A difficulty-aware training mix: whole question groups drawn per bucket, written as train reads it.

    Without --weights or --counts every labeled question is taken (with its bucket). Prints and writes
    (buckets.parquet) what each bucket held, what was asked and what was taken.
    """
    from .curate.sample import run_sample

    check_counts(("--questions", total), ("--max-per-question", max_per_question))
    run_sample(
        input,
        output,
        bucket_by=bucket_by,
        edges=_parse_edges(edges),
        weights=weights,
        counts=counts,
        total=total,
        max_per_question=max_per_question,
        base=base,
        seed=seed,
        overwrite=overwrite,
    ).print()


app.command("train")(train)
app.command("eval")(eval_command)
app.command("experiment")(experiment_command)


class _NoFlagMetavar:
    """A flag (``--overwrite``, ``--resume``, ``--help``) takes no value, so --help shows no type beside
    it (typer 0.2x shows ``<bool>``, as if one were expected)."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class _Command(_NoFlagMetavar, typer.core.TyperCommand):
    pass


class _Group(_NoFlagMetavar, typer.core.TyperGroup):
    pass


def _parse_edges(edges: str | None) -> tuple[float, ...] | None:
    if edges is None:
        return None
    try:
        return tuple(float(x) for x in edges.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected numbers separated by commas, got {edges!r}", param_hint="--edges"
        ) from None


def main() -> None:
    """Entry point: exit 0 on success, 2 with a one-line message on bad input or usage.

    Click (standalone mode) handles usage errors and ``--help``; our known errors become one line. Under
    torchrun (WORLD_SIZE > 1) a rank leaves with ``os._exit`` once its output is flushed: the process group
    is destroyed by then, but gloo's worker threads can still abort a normal interpreter shutdown
    (SIGABRT, "terminate called without an active exception"; pytorch PR 179291), failing a finished run.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        _main()
        return
    try:
        _main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # a crash still shows its traceback, then takes the group down with exit 1
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _main() -> None:
    from rich.markup import escape

    from .curate.io.report import console

    try:
        app()
    except ReportedElsewhere:
        # under torchrun, another rank says this failure on one line (train/distributed.agree); leaving
        # at once could get that rank stopped by torchrun before it printed
        time.sleep(QUIET_RANK_WAIT_S)
        sys.exit(2)
    except OffcurateError as err:
        rank = os.environ.get("RANK", "0")
        if rank != "0":
            # under torchrun every rank meets the same bad option or input: rank 0 says it, and torchrun
            # stops this rank while it waits. An error of this rank alone is said after the wait.
            time.sleep(RANK_ERROR_GRACE_S)
        where = "" if rank == "0" else f"(rank {rank}) "
        console.print(f"[bold red]error:[/] {where}{escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(2)


app.info.cls = _Group
for _command in app.registered_commands:  # every command (keep this after the last registration)
    if _command.cls in (None, typer.core.TyperCommand):
        _command.cls = _Command

if __name__ == "__main__":
    main()
