"""What bench/bench_train.py measures: the model shapes, the rows (``Run``) and the issue's cases.

    from train_cases import SHAPES, Run, cases, smoke_cases
    python bench/bench_train.py --cases 1.5B@16K               # runs one of them

Kept apart from the measuring code so that a case is read (and reviewed) as a table, and so that
bench/bench_lean_optim.py takes its parameter shapes from the same Qwen2.5 configs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1000, tie_word_embeddings=True),
    "0.5B": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "1.5B": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "7B": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
}  # fmt: skip


@dataclass
class Run:
    """One row: a model shape, a mode, trajectory length ``seq``, how many a step packs (per GPU)."""

    shape: str
    mode: str  # naive | ours | lean | fsdp | fsdp-lean | lora
    seq: int
    per_step: int = 1
    ckpt_every: int = 1  # 1: every layer, 2: every 2nd (selective), 0: none
    compile: bool = False
    target: str = ""
    gpus: int = 1  # >1: that many ranks under torchrun, one per GPU (CPU processes with --smoke)
    sp: int = 1  # >1: --sp-size, that many GPUs share each row (Ulysses sequence parallelism)
    result: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.gpus > 1 and not self.mode.startswith("fsdp"):
            raise ValueError(f"{self.mode} on {self.gpus} GPUs: only the fsdp modes reduce gradients")
        if self.sp > 1 and (self.gpus < self.sp or self.gpus % self.sp):
            raise ValueError(f"--sp-size {self.sp} needs a multiple of {self.sp} GPUs, not {self.gpus}")

    @property
    def label(self) -> str:
        extra = {0: " no-ckpt", 1: "", 2: " sel"}.get(self.ckpt_every, f" ckpt/{self.ckpt_every}")
        ranks = f" x{self.gpus}" if self.gpus > 1 else ""
        ranks += f" sp{self.sp}" if self.sp > 1 else ""
        return f"{self.mode}{extra}{ranks}{' compile' if self.compile else ''}"

    def spec(self) -> str:
        """The run as JSON, for the worker flag (``Run(**json.loads(spec))``)."""
        return json.dumps({k: v for k, v in asdict(self).items() if k != "result"})


def with_compile(groups: dict[str, list[Run]]) -> dict[str, list[Run]]:
    """Add a torch.compile variant of every non-naive run (a case need not start with a naive row: 7B)."""
    for runs in groups.values():
        runs += [replace(r, compile=True, result={}) for r in runs if r.mode != "naive"]
    return groups


def cases() -> dict[str, list[Run]]:
    """The issue's targets, each with the naive anchor beside it."""
    return {
        "0.5B@4K": [Run("0.5B", "naive", 4096), Run("0.5B", "ours", 4096, per_step=8, target=">=2.5x naive")],
        "1.5B@16K": [
            Run("1.5B", "naive", 16384),
            Run("1.5B", "ours", 16384, target=">=50% MFU, <=40 GiB"),
            Run("1.5B", "ours", 16384, ckpt_every=2, target=">=50% MFU, <=40 GiB"),
            Run("1.5B", "fsdp", 16384, target="~ours (1 GPU)"),
            Run("1.5B", "fsdp", 16384, gpus=2, target="MFU ~fsdp (1 GPU)"),
            Run("1.5B", "fsdp", 16384, gpus=8, target="MFU ~fsdp (1 GPU)"),
        ],
        "1.5B@32K": [
            Run("1.5B", "naive", 32768),
            Run("1.5B", "lean", 32768, target=">=40% MFU, <=20 GiB"),
            Run("1.5B", "fsdp-lean", 32768, target="~lean (1 GPU)"),
            Run("1.5B", "fsdp-lean", 32768, gpus=8, target="MFU ~fsdp-lean (1 GPU)"),
        ],
        "7B@16K": [
            Run("7B", "lean", 16384, target="fits 80 GB"),
            Run("7B", "lora", 16384, target="fits 80 GB"),
            Run("7B", "fsdp", 16384, gpus=8, target="fits 80 GB a GPU"),
        ],
        "7B@64K": [
            Run("7B", "fsdp", 65536, gpus=8, target="OOM expected: a 64K row on one GPU"),
            Run("7B", "fsdp", 65536, gpus=8, sp=4, target="fits 80 GB a GPU"),
        ],
    }


def smoke_cases() -> dict[str, list[Run]]:
    return {
        "tiny@256": [
            Run("tiny", "naive", 256),
            Run("tiny", "ours", 256, per_step=4),
            Run("tiny", "ours", 256, per_step=4, ckpt_every=2),
            Run("tiny", "lean", 256),
            Run("tiny", "fsdp", 256, per_step=4),
            Run("tiny", "fsdp-lean", 256),
            Run("tiny", "fsdp", 256, per_step=4, gpus=2),  # 2 CPU ranks (gloo) under torchrun
            Run("tiny", "fsdp", 256, per_step=4, gpus=2, sp=2),  # both ranks share every row
        ]
    }
