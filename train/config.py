"""The options of a training run, their checks, and what may change when a run is resumed.

    cfg = TrainConfig(input=Path("runs/demo/voted"), output=Path("runs/train"), model="tiny-random")
    cfg.validate()                          # OffcurateError with the option's name on a bad value

RUN/config.json stores the options. ``--resume`` refuses to continue with options that change the
objective, the data order or the learning-rate schedule (``IDENTITY``): the result would be neither run.
The run's length (--max-steps, or --epochs) is part of it because the cosine decays over it; ``--stop-after``
ends one invocation early without changing the schedule. Throughput and bookkeeping options (micro-batch
budget, chunk size, save cadence, --stop-after) may change.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..curate.io.errors import OffcurateError
from .objective import ObjectiveConfig

OBJECTIVE_KEYS = tuple(ObjectiveConfig.__dataclass_fields__)
IDENTITY = (
    "model",
    "lr",
    "weight_decay",
    "grad_clip",
    "warmup_steps",
    "questions_per_step",
    "max_len",
    "seed",
    "shuffle",
    "max_steps",
    "epochs",
    "dtype",
    "lora_r",
    "lora_alpha",
    "lora_targets",
    "reward",
)


@dataclass
class TrainConfig:
    """Everything ``offcurate train`` accepts (see ``offcurate train --help`` for what each one does)."""

    input: Path
    output: Path
    model: str
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    lr: float = 1e-6
    weight_decay: float = 0.0
    warmup_steps: int = 10
    max_steps: int | None = None
    epochs: int = 1
    stop_after: int | None = None
    questions_per_step: int = 8
    tokens_per_micro_batch: int = 32768
    max_len: int = 32768
    logprob_chunk: int = 1024
    grad_clip: float = 1.0
    seed: int = 0
    shuffle: bool = True
    save_every: int = 100
    keep_last: int = 2
    resume: bool = False
    overwrite: bool = False
    device: str = "auto"
    dtype: str = "auto"
    attn: str = "auto"
    sp_size: int = 1  # ranks that share each micro-batch (Ulysses sequence parallelism, ulysses.py)
    gradient_checkpointing: bool = True
    report_to: tuple[str, ...] = ()  # trackers beside metrics.jsonl (tracking.REPORTERS)
    lora_r: int = 0  # 0: train every weight; > 0: LoRA adapters of this rank (lora.py)
    lora_alpha: float | None = None  # None: 2·r
    lora_targets: str = "all-linear"
    merge: bool = False
    reward: str = "vote"  # vote: majority-vote rewards; gold: scores against the dataset's gold (data.py)

    def validate(self) -> None:
        """One line naming the first bad option, before anything runs (no folder, no model load)."""
        _check_floats(
            ("--lr", self.lr, 0.0, 1.0, "in (0, 1] (AdamW moves each weight by about --lr a step)"),
            ("--weight-decay", self.weight_decay, 0.0, None, ">= 0"),
            ("--grad-clip", self.grad_clip, 0.0, None, ">= 0 (0: no clipping)"),
            ("--lora-alpha", self.lora_alpha, 0.0, None, "> 0"),
        )
        checks = [
            (self.warmup_steps >= 0, "--warmup-steps must be >= 0"),
            (self.max_steps is None or self.max_steps >= 1, "--max-steps must be >= 1"),
            (self.stop_after is None or self.stop_after >= 1, "--stop-after must be >= 1"),
            (self.epochs >= 1, "--epochs must be >= 1"),
            (self.questions_per_step >= 1, "--questions-per-step must be >= 1"),
            (self.max_len >= 2, "--max-len must be >= 2 (a prompt token and a response token)"),
            (
                self.tokens_per_micro_batch >= self.max_len,
                f"--tokens-per-micro-batch ({self.tokens_per_micro_batch}) must be >= --max-len "
                f"({self.max_len}) so the longest trajectory fits in one micro-batch",
            ),
            (self.logprob_chunk >= 1, "--logprob-chunk must be >= 1"),
            (self.save_every >= 0, "--save-every must be >= 0 (0: only at the end)"),
            (self.keep_last >= 0, "--keep-last must be >= 0 (0: keep all)"),
            (self.sp_size >= 1, "--sp-size must be >= 1 (1: no sequence parallelism)"),
            (
                self.sp_size == 1 or self.attn in ("auto", "varlen"),
                f"--sp-size {self.sp_size} runs the varlen attention: pass --attn auto or varlen",
            ),
            (self.lora_r >= 0, "--lora-r must be >= 0 (0: no LoRA)"),
            (self.lora_r > 0 or self.lora_alpha is None, "--lora-alpha applies to LoRA runs: pass --lora-r"),
            (self.lora_r > 0 or self.lora_targets == "all-linear", "--lora-targets applies to LoRA runs"),
            (self.lora_r > 0 or not self.merge, "--merge folds LoRA adapters in: pass --lora-r"),
            (self.reward in ("vote", "gold"), f"--reward must be vote or gold, got {self.reward!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise OffcurateError(message)
        if self.resume and self.overwrite:
            raise OffcurateError("--resume and --overwrite exclude each other")

    @property
    def attention(self) -> str:
        """The --attn to load with: sequence parallelism needs the varlen attention (on CPU too)."""
        return "varlen" if self.sp_size > 1 else self.attn

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["input"], data["output"] = str(self.input), str(self.output)
        return data

    def save(self, run_dir: Path) -> None:
        """RUN/config.json, written whole or not at all (a full disk leaves the earlier file)."""
        write_json_atomic(run_dir / "config.json", self.to_json())

    def check_resumable(self, run_dir: Path) -> None:
        """Refuse to resume with options that change the math or the data order; name each one."""
        saved, mine = _flat(read_run_config(run_dir)), _flat(self.to_json())
        for key, value in _DEFAULTS.items():  # an option added since the run started had its default
            saved.setdefault(key, value)
        keys = [k for k in mine if k in IDENTITY or k in OBJECTIVE_KEYS]
        changed = [
            f"--{k.replace('_', '-')} {saved.get(k)!r} -> {mine[k]!r}"
            for k in keys
            if saved.get(k) != mine[k]
        ]
        if changed:
            hint = ""
            if any(saved.get(k) != mine[k] for k in ("max_steps", "epochs")):
                hint = " (the run's length fixes its schedule: --stop-after N stops earlier)"
            raise OffcurateError(f"{run_dir}: cannot resume with changed options: {'; '.join(changed)}{hint}")


def warmup_warning(warmup_steps: int, total_steps: int, lr: float) -> str | None:
    """A run shorter than its warmup never reaches --lr (``lr_multiplier`` is (step + 1) / warmup until
    warmup, so the last step gets total / warmup of it) and never decays: worth one line, not an error."""
    if warmup_steps <= total_steps:
        return None
    return (
        f"--warmup-steps {warmup_steps} is longer than the run ({total_steps} steps): the learning rate "
        f"peaks at {lr * total_steps / warmup_steps:.3g} ({total_steps}/{warmup_steps} of --lr {lr:g}) "
        "and never decays; lower --warmup-steps to reach --lr"
    )


def _check_floats(*options: tuple[str, float | None, float, float | None, str]) -> None:
    """Each (option, value, low, high, wording): a finite number with low < value <= high (low <= value
    where the wording says >=); None (the automatic default) passes. nan compares false with everything,
    so without the finite check it slipped through every range test (--beta nan acted as 0)."""
    for name, value, low, high, wording in options:
        if value is None:
            continue
        inclusive = wording.startswith(">=")
        ok = math.isfinite(value) and (value >= low if inclusive else value > low)
        if ok and high is not None:
            ok = value <= high
        if not ok:
            raise OffcurateError(f"{name} must be {wording}, a finite number; got {value:g}")


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The options RUN/config.json holds; missing, empty or damaged is one line naming the file."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise OffcurateError(f"{path}: missing; this folder was not written by offcurate train")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        what = "empty" if path.stat().st_size == 0 else f"not readable JSON ({err})"
        raise OffcurateError(f"{path}: {what}; the run's options are lost, so it cannot be resumed") from None
    if not isinstance(data, dict) or "objective" not in data:
        raise OffcurateError(f"{path}: not the options of an offcurate train run")
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """``path`` holds ``data`` as JSON, whole: written beside it, then renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    """The objective's fields at top level, named like their CLI options (loss, bias, eps, ...)."""
    flat = {k: v for k, v in data.items() if k != "objective"}
    flat.update(data.get("objective") or {})
    return flat
