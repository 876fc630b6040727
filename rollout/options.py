"""Command-line options of sampling a model, shared by ``offcurate rollout`` and ``offcurate eval --model``.

Typer reads options off each command's signature, so the two commands declare these aliases and hand
the values to ``generation`` to get one ``Generation``. Importing this module imports neither torch nor
transformers (``offcurate --help`` stays instant).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .generate import Generation, SamplingConfig

PANEL = "Sampling the model"

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
TopP = Annotated[float, typer.Option(rich_help_panel=PANEL, help="Nucleus sampling mass.")]
BatchSize = Annotated[
    int,
    typer.Option(
        rich_help_panel=PANEL, help="Sequences per generate call (prompts x k); lower it on out-of-memory."
    ),
]
Backend = Annotated[
    str,
    typer.Option(
        rich_help_panel=PANEL, help="`auto` (vLLM when installed and on a GPU), `transformers` or `vllm`."
    ),
]
Device = Annotated[
    str, typer.Option(rich_help_panel=PANEL, help="`auto` (CUDA if present), `cpu`, `cuda:1`, ...")
]
DType = Annotated[
    str, typer.Option(rich_help_panel=PANEL, help="`auto` (bf16 on CUDA, else fp32), `bf16`, `fp32`.")
]
Seed = Annotated[
    int,
    typer.Option(
        rich_help_panel=PANEL, help="Seed of the sampling: same seed, model and questions, same samples."
    ),
]
Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        rich_help_panel=PANEL,
        help="Continue an interrupted sampling run: finished batches are kept.",
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
) -> Generation:
    """The options as one ``Generation`` (sampling values are checked here: one-line errors)."""
    sampling = SamplingConfig(k, max_new_tokens, temperature, top_p)
    return Generation(model, sampling, batch_size, seed, backend, device, dtype)
