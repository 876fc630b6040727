"""The ``offcurate train`` command (registered in cli.py); imports neither torch nor transformers itself.

    offcurate train -i runs/demo/voted -o runs/train-demo --model tiny-random --max-steps 20
    offcurate train -i data/voted -o runs/r1 --model Qwen/Qwen2.5-1.5B-Instruct --max-len 16384
    torchrun --nproc-per-node 8 -m offcurate train -i data/voted -o runs/r7b --model Qwen/Qwen2.5-7B-Instruct
    torchrun --nproc-per-node 8 -m offcurate train ... --max-len 65536 --tokens-per-micro-batch 65536 \
        --sp-size 4                              # each 64K-token row shared by 4 GPUs

The heavy imports happen when the command runs, so ``offcurate --help`` stays instant and a missing
``train`` extra is a one-line error (``extra.py``) instead of an ImportError at start-up. The options come in
help panels (objective, schedule, data, engine, output, LoRA) that stay readable at 80 columns.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..curate.io.errors import OffcurateError
from .extra import require_train_extra


class Loss(str, Enum):
    off_grpo = "off-grpo"
    sft = "sft"


class Shaping(str, Enum):
    none = "none"
    luffy = "luffy"


class DType(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16_mixed = "bf16-mixed"
    bf16 = "bf16"


class Attn(str, Enum):
    auto = "auto"
    sdpa = "sdpa"
    varlen = "varlen"
    flash_attention_2 = "flash_attention_2"
    eager = "eager"


OBJECTIVE, SCHEDULE, DATA, ENGINE, OUTPUT = "Objective", "Schedule", "Data", "Engine", "Output"
LORA = "LoRA"


def _opt(help: str, *names: str, panel: str | None = None, **kwargs) -> typer.models.OptionInfo:
    return typer.Option(*names, help=help, rich_help_panel=panel, **kwargs)


def train(
    model: Annotated[
        str,
        _opt(
            "Causal LM with a chat template: a local folder, a Hub id (Qwen/Qwen2.5-1.5B-Instruct) or "
            "`tiny-random` (a 2-layer random Qwen2 built offline into OUTPUT/tiny-random, for smoke tests)."
        ),
    ],
    loss: Annotated[
        Loss,
        _opt(
            "`off-grpo`: off-policy GRPO with the all-positive bias; `sft`: NLL of the positive traces "
            "(refuses --bias, --eps, --shaping, --gamma).",
            panel=OBJECTIVE,
        ),
    ] = Loss.off_grpo,
    bias: Annotated[
        float, _opt("Added to every advantage of an all-positive group (0: plain GRPO).", panel=OBJECTIVE)
    ] = 0.5,
    eps: Annotated[
        float, _opt("ε of max(π, 1-ε)·A: negatives push down only tokens with π > 1-ε.", panel=OBJECTIVE)
    ] = 0.2,
    beta: Annotated[
        float, _opt("KL(π‖π_ref) weight (k3); > 0 keeps a frozen copy of the start model.", panel=OBJECTIVE)
    ] = 0.0,
    shaping: Annotated[
        Shaping,
        _opt("`luffy`: f(π)·A with f(π) = π/(π+γ) on every token, no clip (refuses --eps).", panel=OBJECTIVE),
    ] = Shaping.none,
    gamma: Annotated[float, _opt("γ of --shaping luffy.", panel=OBJECTIVE)] = 0.1,
    lr: Annotated[float, _opt("Peak learning rate (LUFFY used 1e-6 for 7B).", panel=SCHEDULE)] = 1e-6,
    warmup_steps: Annotated[
        int, _opt("Linear warmup steps, then cosine decay to 0 at the last step.", panel=SCHEDULE)
    ] = 10,
    max_steps: Annotated[
        int | None,
        _opt(
            "Run length in optimizer steps (default: from --epochs); the cosine decays over it, so it "
            "cannot change on --resume (see --stop-after).",
            panel=SCHEDULE,
        ),
    ] = None,
    epochs: Annotated[
        int, _opt("Passes over the ok questions when --max-steps is not given.", panel=SCHEDULE)
    ] = 1,
    stop_after: Annotated[
        int | None,
        _opt(
            "End this invocation after step N with a checkpoint (final/ waits for the run's last step); "
            "--resume continues on the same schedule.",
            panel=SCHEDULE,
        ),
    ] = None,
    weight_decay: Annotated[
        float, _opt("AdamW weight decay (not on biases and norms).", panel=SCHEDULE)
    ] = 0.0,
    grad_clip: Annotated[float, _opt("Global gradient-norm clip (0: none).", panel=SCHEDULE)] = 1.0,
    input: Annotated[
        Path, _opt("An `offcurate vote` output or `sample` mix.", "-i", "--input", panel=DATA)
    ] = Path("data/voted"),
    reward: Annotated[
        str,
        _opt(
            "`vote` (majority vote) or `gold` (against the set's gold answers: `gold_reward`; questions "
            "without one are skipped).",
            panel=DATA,
        ),
    ] = "vote",
    questions_per_step: Annotated[
        int, _opt("Questions per optimizer step (each with all its traces).", panel=DATA)
    ] = 8,
    max_len: Annotated[
        int, _opt("Longer trajectories (prompt + response tokens) are dropped and counted.", panel=DATA)
    ] = 32768,
    no_shuffle: Annotated[
        bool, _opt("Keep file order (default: shuffle each epoch, seeded).", "--no-shuffle", panel=DATA)
    ] = False,
    seed: Annotated[int, _opt("Seed of the question order and of the tiny model.", panel=DATA)] = 0,
    tokens_per_micro_batch: Annotated[
        int, _opt("Tokens in one packed, padding-free micro-batch (>= --max-len).", panel=ENGINE)
    ] = 32768,
    logprob_chunk: Annotated[
        int, _opt("Tokens per lm_head chunk: bounds the logits held at once.", panel=ENGINE)
    ] = 1024,
    device: Annotated[
        str, _opt("`auto` (CUDA if present), `cpu`, `cuda:1`, ... (torchrun: cuda:LOCAL_RANK).", panel=ENGINE)
    ] = "auto",
    dtype: Annotated[
        DType,
        _opt(
            "`auto`: bf16-mixed on CUDA, fp32 on CPU; `bf16-mixed`: fp32 weights, bf16 matmuls; `bf16`: "
            "bf16 weights and AdamW states (half the memory), stochastically rounded updates.",
            panel=ENGINE,
            metavar="<dtype>",
        ),
    ] = DType.auto,
    attn: Annotated[
        Attn,
        _opt(
            "`auto` (flash varlen on CUDA, else `sdpa`), `sdpa`, `varlen`, `flash_attention_2`, `eager`.",
            panel=ENGINE,
            metavar="<attn>",
        ),
    ] = Attn.auto,
    sp_size: Annotated[
        int,
        _opt(
            "Sequence parallelism (torchrun): K ranks share each micro-batch, T/K tokens each, so rows K "
            "times longer fit (raise --tokens-per-micro-batch). K divides the ranks and the heads.",
            panel=ENGINE,
        ),
    ] = 1,
    no_gradient_checkpointing: Annotated[
        bool,
        _opt(
            "Keep activations instead of recomputing decoder layers in backward: ~1/3 less compute, "
            "much more memory.",
            "--no-gradient-checkpointing",
            panel=ENGINE,
        ),
    ] = False,
    output: Annotated[
        Path,
        _opt("Run folder: config.json, metrics.jsonl, checkpoints, final/.", "-o", "--output", panel=OUTPUT),
    ] = Path("runs/train"),
    save_every: Annotated[int, _opt("Checkpoint every N steps (0: only at the end).", panel=OUTPUT)] = 100,
    keep_last: Annotated[int, _opt("Keep the newest N checkpoints (0: all).", panel=OUTPUT)] = 2,
    resume: Annotated[
        bool,
        _opt(
            "Continue from the newest checkpoint in OUTPUT (bit-identical on the same device and "
            "number of ranks; another number of torchrun ranks works too); refuses options that "
            "change the objective, data order or schedule.",
            "--resume",
            panel=OUTPUT,
        ),
    ] = False,
    overwrite: Annotated[
        bool, _opt("Delete an earlier run in OUTPUT first (otherwise refused).", "--overwrite", panel=OUTPUT)
    ] = False,
    report_to: Annotated[
        str,
        _opt(
            "Trackers beside metrics.jsonl: `none`, or any of `tensorboard` (RUN/tensorboard/), `wandb` "
            "(WANDB_MODE=offline, WANDB_PROJECT), `trackio` (TRACKIO_PROJECT), comma-separated.",
            panel=OUTPUT,
        ),
    ] = "none",
    lora_r: Annotated[
        int,
        _opt(
            "LoRA rank (peft): train rank-r adapters of a frozen model (0: every weight); final/ then "
            "holds the adapter.",
            panel=LORA,
        ),
    ] = 0,
    lora_alpha: Annotated[float | None, _opt("Adapters add (alpha/r)·B·A. Default: 2·r.", panel=LORA)] = None,
    lora_targets: Annotated[
        str, _opt("`all-linear` (every linear layer but the head) or e.g. q_proj,v_proj.", panel=LORA)
    ] = "all-linear",
    merge: Annotated[
        bool, _opt("Also write RUN/final-merged/: adapters folded in (transformers).", "--merge", panel=LORA)
    ] = False,
) -> None:
    """Off-policy GRPO on the teacher traces of `offcurate vote`, with the all-positive bias.

    Per question (G traces, rewards r): A = (r - mean) / (std + 1e-6), population std, plus --bias when
    every r > 0; per token: min[π·A, max(π, 1-ε)·A], the teacher's probability taken as 1. Questions whose
    vote status is not ok are skipped. Writes metrics.jsonl, resumable checkpoints and OUTPUT/final/
    (Hugging Face format). Under `torchrun --nproc-per-node N -m offcurate train ...` the model is sharded
    with FSDP2 over N processes and each step is split across them, with the result of one process.
    """
    require_train_extra("offcurate train")
    from .config import TrainConfig
    from .engine import run_training
    from .objective import ObjectiveConfig
    from .tracking import parse_report_to

    try:
        objective = ObjectiveConfig(loss.value, bias, eps, beta, shaping.value, gamma)
    except ValueError as err:
        raise OffcurateError(f"bad objective option: {err}") from None
    cfg = TrainConfig(
        input=input,
        output=output,
        model=model,
        objective=objective,
        lr=lr,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        max_steps=max_steps,
        epochs=epochs,
        stop_after=stop_after,
        questions_per_step=questions_per_step,
        tokens_per_micro_batch=tokens_per_micro_batch,
        max_len=max_len,
        logprob_chunk=logprob_chunk,
        grad_clip=grad_clip,
        seed=seed,
        shuffle=not no_shuffle,
        save_every=save_every,
        keep_last=keep_last,
        resume=resume,
        overwrite=overwrite,
        device=device,
        dtype=dtype.value,
        attn=attn.value,
        sp_size=sp_size,
        gradient_checkpointing=not no_gradient_checkpointing,
        report_to=parse_report_to(report_to),
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_targets=lora_targets,
        merge=merge,
        reward=reward,
    )
    report = run_training(cfg)
    if report is not None:  # under torchrun only rank 0 reports
        report.print()
