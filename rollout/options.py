"""Command-line options of sampling a model, shared by ``offcurate rollout`` and ``offcurate eval --model``.

Typer reads options off each command's signature, so the two commands declare these aliases and hand
the values to ``generation`` to get one ``Generation`` (every value checked there: finite, in range, a
known backend or dtype; one line, exit 2, before anything is read or created). Importing this module
imports neither torch nor transformers (``offcurate --help`` stays instant).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .generate import Generation, SamplingConfig

PANEL = "Sampling the model"
ENGINE = "Engine"
SERVER = "Server (--backend openai)"
NODES = "Many nodes"

Model = Annotated[
    str | None,
    typer.Option(
        rich_help_panel=PANEL,
        help="Local folder or Hub id of a causal LM with a chat template (or `tiny-random`).",
    ),
]
K = Annotated[int, typer.Option("-k", rich_help_panel=PANEL, help="Samples per question.")]
MaxNewTokens = Annotated[
    int, typer.Option(rich_help_panel=PANEL, help="Generated tokens per sample, at most.")
]
Temperature = Annotated[float, typer.Option(rich_help_panel=PANEL, help="Sampling temperature (0: greedy).")]
TopP = Annotated[float, typer.Option(rich_help_panel=PANEL, help="Nucleus sampling mass, in (0, 1].")]
Seed = Annotated[
    int,
    typer.Option(
        rich_help_panel=PANEL,
        help="Seed: a question's samples are seeded by (seed, question id), however the run is cut.",
    ),
]
Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        rich_help_panel=PANEL,
        help="Continue an interrupted run: finished questions are kept (same model and options).",
    ),
]
Backend = Annotated[
    str,
    typer.Option(
        rich_help_panel=ENGINE,
        help="`auto` (vLLM when installed and on a GPU, else transformers), `transformers`, `vllm`, "
        "or `openai` (a server, see below).",
    ),
]
Device = Annotated[
    str, typer.Option(rich_help_panel=ENGINE, help="`auto` (CUDA if present), `cpu`, `cuda:1`, ...")
]
DType = Annotated[
    str, typer.Option(rich_help_panel=ENGINE, help="`auto` (bf16 on CUDA, else fp32), `bf16`, `fp32`.")
]
BatchSize = Annotated[
    int,
    typer.Option(
        rich_help_panel=ENGINE,
        help="transformers: samples per generate call (one question's k in calls of this many).",
    ),
]
TensorParallelSize = Annotated[
    int, typer.Option(rich_help_panel=ENGINE, help="vLLM: GPUs per engine (a model too big for one GPU).")
]
DataParallelSize = Annotated[
    int,
    typer.Option(
        rich_help_panel=ENGINE,
        help="Engines, each on --tensor-parallel-size GPUs (or CPU threads); questions dealt by hash.",
    ),
]
MaxModelLen = Annotated[
    int | None,
    typer.Option(
        rich_help_panel=ENGINE,
        help="vLLM: context per sequence (default: longest prompt + --max-new-tokens).",
    ),
]
GpuMemoryUtilization = Annotated[
    float | None,
    typer.Option(rich_help_panel=ENGINE, help="vLLM: share of GPU memory for weights + KV cache (0.9)."),
]
PromptsInFlight = Annotated[
    int | None,
    typer.Option(rich_help_panel=ENGINE, help="vLLM: prompts queued in the engine at once (4096)."),
]
Endpoint = Annotated[
    str | None,
    typer.Option(
        rich_help_panel=SERVER, help="OpenAI-compatible server, e.g. http://node7:8000/v1 (vllm serve, ...)."
    ),
]
ApiKeyEnv = Annotated[
    str | None,
    typer.Option(rich_help_panel=SERVER, metavar="VAR", help="Environment variable holding the API key."),
]
Concurrency = Annotated[
    int | None, typer.Option(rich_help_panel=SERVER, help="Requests in flight (64); retried on 429/5xx.")
]
ShardIndex = Annotated[
    int, typer.Option(rich_help_panel=NODES, help="Which slice of the question-hash space to sample.")
]
NumShards = Annotated[
    int,
    typer.Option(
        rich_help_panel=NODES,
        help="Slices (one job each); the K outputs under one parent are read as one. eval --model: "
        "each samples into OUTPUT-responses/shard-I-of-K, then eval --responses scores them.",
    ),
]


def generation(
    model: str,
    k: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    batch_size: int,
    seed: int,
    backend: str,
    device: str,
    dtype: str,
    tensor_parallel_size: int = 1,
    data_parallel_size: int = 1,
    max_model_len: int | None = None,
    gpu_memory_utilization: float | None = None,
    prompts_in_flight: int | None = None,
    endpoint: str | None = None,
    api_key_env: str | None = None,
    concurrency: int | None = None,
    shard_index: int = 0,
    num_shards: int = 1,
) -> Generation:
    """The options as one ``Generation`` (values are checked there: one-line errors)."""
    sampling = SamplingConfig(k, max_new_tokens, temperature, top_p)
    return Generation(
        model,
        sampling,
        batch_size,
        seed,
        backend,
        device,
        dtype,
        tensor_parallel_size=tensor_parallel_size,
        data_parallel_size=data_parallel_size,
        max_model_len=max_model_len,
        gpu_memory_utilization=gpu_memory_utilization,
        prompts_in_flight=prompts_in_flight,
        endpoint=endpoint,
        api_key_env=api_key_env,
        concurrency=concurrency,
        shard_index=shard_index,
        num_shards=num_shards,
    )
