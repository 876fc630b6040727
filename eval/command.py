"""The ``offcurate eval`` command (registered in cli.py): score responses on benchmarks, or compare two runs.

    offcurate eval -b math500.jsonl -b aime24.jsonl --model Qwen/Qwen2.5-1.5B-Instruct -k 4 -o runs/eval-base
    offcurate eval -b math500.jsonl -b aime24.jsonl --responses runs/rollouts -o runs/eval-base
    offcurate eval --compare runs/eval-base runs/eval-grpo -o runs/compare
    offcurate eval --compare runs/eval-base runs/eval-bias runs/eval-sft -o runs/compare   # any number

Polars and math-verify are imported when the command runs, so ``offcurate --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..curate.io.checks import check_counts, check_positive
from ..curate.io.errors import OffcurateError
from ..rollout import options as opts

USAGE = (
    "give --benchmark FILE (once per benchmark) and --model M (to sample answers) or --responses DIR "
    "(answers sampled before), or --compare BASE TRAINED [TRAINED ...]"
)


def eval_command(
    benchmark: Annotated[
        list[Path] | None,
        typer.Option(
            "--benchmark",
            "-b",
            metavar="FILE",
            help=(
                "Benchmark with gold answers: .jsonl, .parquet or a folder of shards (or a quoted pattern: "
                "'DIR/*.jsonl'); question column "
                "`question` or `problem`, gold `answer` or else the last \\boxed{} of `solution`. "
                "Repeat for several; each is named by its file stem (math500.jsonl -> math500)."
            ),
        ),
    ] = None,
    responses: Annotated[
        Path | None,
        typer.Option(
            "--responses",
            "-r",
            metavar="DIR",
            help=(
                "Folder of sampled responses (`offcurate rollout` format: question_id or question, "
                "sample_idx, response), matched to the benchmark problems by question_id. With --model: "
                "where the new samples go (default: OUTPUT-responses next to the output)."
            ),
        ),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Instead of scoring: compare the `offcurate eval` output FOLDERS given as arguments, the "
            "base first, then any number of trained models; per-benchmark tables and radar.png.",
        ),
    ] = False,
    folders: Annotated[
        list[Path] | None,
        typer.Argument(metavar="[FOLDERS]...", help="With --compare: eval outputs, the base first."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Output folder, written atomically (default runs/eval or runs/compare)."
        ),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Scoring processes (default: all cores).")] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds per math-verify parse/compare; a slower answer counts as wrong.")
    ] = 2.0,  # equivalence.DEFAULT_TIMEOUT, not imported: --help stays free of pyarrow
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing non-empty output folder.")
    ] = False,
    model: opts.Model = None,
    k: opts.K = 4,
    max_new_tokens: opts.MaxNewTokens = 4096,
    temperature: opts.Temperature = 0.6,
    top_p: opts.TopP = 0.95,
    batch_size: opts.BatchSize = 64,
    backend: opts.Backend = "auto",
    device: opts.Device = "auto",
    dtype: opts.DType = "auto",
    seed: opts.Seed = 0,
    resume: opts.Resume = False,
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
    """pass@1 and maj@k of sampled responses on benchmarks with gold answers; or compare two eval runs.

    Answers are extracted and compared as in `vote` (last \\boxed{} after `</think>`, math-verify
    equivalence). pass@1 is the mean correctness over a problem's k samples; maj@k is 1 when the largest
    class of equivalent answers (ties: the first seen, by sample_idx) is the gold. Writes results.parquet
    (one row per problem), summary.parquet and summary.json (one row per benchmark) and a card; problems
    without responses are listed, never dropped. With --model the answers are sampled first, exactly as
    `offcurate rollout` does (chat template, k samples, resumable with --resume), into --responses.

    `--compare BASE TRAINED [TRAINED ...]` reads such folders and writes compare.parquet/compare.json (per
    benchmark and model: pass@1 with its 95% interval, maj@k, the chain checks, deltas against the base)
    and radar.png (one axis per benchmark, one polygon per model; grouped bars below three benchmarks).
    """
    check_counts(("--workers", workers))
    check_positive(("--timeout", timeout))
    if compare:
        if benchmark or responses:
            raise OffcurateError("--compare takes eval output folders; drop --benchmark/--responses")
        if len(folders or []) < 2:
            raise OffcurateError(
                "--compare takes two or more eval output folders: BASE TRAINED [TRAINED ...]"
            )
        from .compare import compare as run_compare

        run_compare(folders, output or Path("runs/compare"), overwrite=overwrite).print()
        return
    if folders:
        raise OffcurateError(f"unexpected argument {str(folders[0])!r}: folders are read with --compare")
    if not benchmark or (responses is None and model is None):
        raise OffcurateError(USAGE)
    from ..curate.io.shards import check_output
    from .benchmarks import benchmark_questions, load_benchmarks
    from .evaluate import evaluate

    output = output or Path("runs/eval")
    run = None  # the sampling options are checked before any benchmark is read
    if model is not None:
        run = opts.generation(
            model, k, max_new_tokens, temperature, top_p, batch_size, seed, backend, device, dtype,
            tensor_parallel_size=tensor_parallel_size, data_parallel_size=data_parallel_size,
            max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
            prompts_in_flight=prompts_in_flight, endpoint=endpoint, api_key_env=api_key_env,
            concurrency=concurrency, shard_index=shard_index, num_shards=num_shards,
        )  # fmt: skip
    elif num_shards != 1 or shard_index != 0:
        raise OffcurateError("--shard-index/--num-shards slice the sampling: they need --model")
    sliced = run is not None and run.num_shards > 1
    if responses is None:
        parent = output.parent / f"{output.name}-responses"
        responses = parent / f"shard-{shard_index}-of-{num_shards}" if sliced else parent
    if not sliced:
        check_output(output, overwrite, (responses,))  # before sampling, so a refusal costs nothing
    benchmarks = load_benchmarks(benchmark)
    if run is not None:
        from ..rollout.stage import rollout_questions

        rollout_questions(
            benchmark_questions(benchmarks), responses, run, resume=resume, overwrite=overwrite
        ).print()
    if sliced:
        from ..curate.io.report import console

        console.print(
            f"slice {shard_index} of {num_shards} sampled into {responses}; when all {num_shards} are done, "
            f"score them together: offcurate eval {' '.join(f'-b {b}' for b in benchmark)} "
            f"--responses {responses.parent} -o {output}",
            highlight=False,
            soft_wrap=True,
        )
        return
    evaluate(
        benchmarks,
        responses,
        output,
        workers=workers,
        timeout=timeout,
        overwrite=overwrite,
    ).print()
