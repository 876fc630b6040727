"""The ``offcurate train`` command (registered in cli.py); imports neither torch nor transformers itself.

    offcurate train -i runs/demo/voted -o runs/train-demo --model tiny-random --max-steps 20
    offcurate train -i data/voted -o runs/r1 --model Qwen/Qwen2.5-1.5B-Instruct --max-len 16384
    torchrun --nproc-per-node 8 -m offcurate train -i data/voted -o runs/r7b --model Qwen/Qwen2.5-7B-Instruct

The heavy imports happen when the command runs, so ``offcurate --help`` stays instant and a missing
``offcurate[train]`` extra is a one-line error instead of an ImportError at start-up.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..curate.io.errors import OffcurateError

MISSING = "offcurate train needs torch and transformers: pip install 'offcurate[train]'"


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


def _opt(help: str, *names: str, **kwargs) -> typer.models.OptionInfo:
    return typer.Option(*names, help=help, **kwargs)


def train(
    model: Annotated[
        str,
        _opt(
            "Local folder or Hub id of a causal LM with a chat template (e.g. Qwen/Qwen2.5-1.5B-Instruct), "
            "or `tiny-random`: a 2-layer random Qwen2 and BPE tokenizer built offline into "
            "OUTPUT/tiny-random (also `python -m offcurate.train.tiny DIR`), for smoke tests."
        ),
    ],
    input: Annotated[
        Path, _opt("The `offcurate vote` output folder (or its trajectories/ subfolder).", "-i", "--input")
    ] = Path("data/voted"),
    output: Annotated[
        Path,
        _opt("Run folder: config.json, metrics.jsonl, checkpoint-*/, final/ (HF format).", "-o", "--output"),
    ] = Path("runs/train"),
    loss: Annotated[
        Loss,
        _opt(
            "`off-grpo`: off-policy GRPO with the all-positive bias; `sft`: NLL of positive traces "
            "(--bias, --eps, --shaping, --gamma do not apply and are refused)."
        ),
    ] = Loss.off_grpo,
    bias: Annotated[
        float, _opt("b added to every advantage of an all-positive group (0 = plain off-policy GRPO).")
    ] = 0.5,
    eps: Annotated[float, _opt("ε of max(π, 1-ε)·A: negatives only push down tokens with π > 1-ε.")] = 0.2,
    beta: Annotated[
        float, _opt("KL(π_θ‖π_ref) weight, k3 estimator; > 0 keeps a frozen copy of the start model.")
    ] = 0.0,
    shaping: Annotated[
        Shaping,
        _opt(
            "`luffy`: LUFFY's off-policy term f(π)·A with f(π)=π/(π+γ) for every token of either sign, "
            "no clip (--eps does not apply and is refused)."
        ),
    ] = Shaping.none,
    gamma: Annotated[float, _opt("γ of the LUFFY shaping (only with --shaping luffy).")] = 0.1,
    lr: Annotated[float, _opt("Peak learning rate (LUFFY used 1e-6 for 7B).")] = 1e-6,
    weight_decay: Annotated[float, _opt("AdamW weight decay (not applied to biases and norms).")] = 0.0,
    warmup_steps: Annotated[int, _opt("Linear warmup steps, then cosine decay to 0 at the last step.")] = 10,
    max_steps: Annotated[
        int | None,
        _opt(
            "Length of the run in optimizer steps (the data loops over epochs); default: --epochs. The "
            "cosine decays to 0 at its end, so it is fixed once the run starts (see --stop-after)."
        ),
    ] = None,
    epochs: Annotated[
        int, _opt("Passes over the ok questions when --max-steps is not given (fixed once the run starts).")
    ] = 1,
    stop_after: Annotated[
        int | None,
        _opt(
            "End this invocation after global step N (<= the run's length) with a checkpoint; "
            "--resume continues on the same schedule, as if the run had not stopped."
        ),
    ] = None,
    questions_per_step: Annotated[
        int, _opt("Questions per optimizer step; all G traces of a question share one step.")
    ] = 8,
    tokens_per_micro_batch: Annotated[
        int, _opt("Token budget of one packed, padding-free micro-batch (>= --max-len).")
    ] = 32768,
    max_len: Annotated[
        int, _opt("Prompt + response tokens above this: the trajectory is dropped and counted.")
    ] = 32768,
    logprob_chunk: Annotated[
        int, _opt("Tokens per lm_head chunk: bounds the [tokens x vocab] logits held at once.")
    ] = 1024,
    grad_clip: Annotated[float, _opt("Clip the global gradient norm to this (0: no clipping).")] = 1.0,
    seed: Annotated[int, _opt("Seed of the question order and of the tiny model.")] = 0,
    shuffle: Annotated[bool, _opt("Shuffle questions each epoch (seeded) instead of file order.")] = True,
    save_every: Annotated[int, _opt("Checkpoint every N steps (0: only at the end).")] = 100,
    keep_last: Annotated[int, _opt("Keep only the newest N checkpoints (0: keep all).")] = 2,
    resume: Annotated[
        bool,
        _opt(
            "Continue from the newest checkpoint in OUTPUT (bit-for-bit on the same device and number of "
            "ranks; another number of torchrun ranks works too). Options that change the objective, data "
            "order or schedule (--max-steps/--epochs included) are refused.",
            "--resume",
        ),
    ] = False,
    overwrite: Annotated[
        bool, _opt("Delete an earlier train run in OUTPUT first (otherwise refused).", "--overwrite")
    ] = False,
    device: Annotated[
        str, _opt("`auto` (CUDA if present), `cpu`, `cuda`, `cuda:1`, ... (under torchrun: cuda:LOCAL_RANK).")
    ] = "auto",
    dtype: Annotated[
        DType,
        _opt(
            "`auto`: bf16-mixed on CUDA, fp32 on CPU. `bf16-mixed`: fp32 weights and optimizer, bf16 "
            "matmuls. `bf16`: the lean mode, bf16 weights, gradients and AdamW states (8 bytes a "
            "parameter instead of 16), updates stochastically rounded so that small steps (lr 1e-6) "
            "still land on average."
        ),
    ] = DType.auto,
    attn: Annotated[
        Attn, _opt("Attention for packed rows: `auto` = PyTorch flash varlen on CUDA, else SDPA.")
    ] = Attn.auto,
    gradient_checkpointing: Annotated[
        bool, _opt("Recompute decoder layers in backward (less memory, ~1/3 more compute).")
    ] = True,
    report_to: Annotated[
        str,
        _opt(
            "Trackers beside metrics.jsonl: `none`, or a comma-separated subset of `tensorboard` "
            "(RUN/tensorboard/), `wandb` (honours WANDB_MODE=offline, WANDB_PROJECT), `trackio` (local "
            "database, TRACKIO_PROJECT). Each needs its package installed."
        ),
    ] = "none",
    lora_r: Annotated[
        int,
        _opt(
            "LoRA rank (with peft): freeze the model and train rank-r adapters only (0: train every "
            "weight). final/ then holds the adapter (PeftModel.from_pretrained(base, RUN/final))."
        ),
    ] = 0,
    lora_alpha: Annotated[
        float | None, _opt("LoRA scale numerator: adapters add (alpha/r)·B·A. Default: 2·r.")
    ] = None,
    lora_targets: Annotated[
        str,
        _opt(
            "Modules that get adapters: `all-linear` (every linear layer but the head) or e.g. q_proj,v_proj."
        ),
    ] = "all-linear",
    merge: Annotated[
        bool,
        _opt(
            "LoRA: also write RUN/final-merged/, the model with the adapters folded in (transformers).",
            "--merge",
        ),
    ] = False,
) -> None:
    """Off-policy GRPO on the teacher traces of `offcurate vote`, with the all-positive bias.

    Per question (G traces, rewards r): A = (r - mean) / (population std + 1e-6), + --bias if every r > 0
    (population std, ddof=0: TRL and verl use ddof=1, whose A is ~3% smaller at G = 16);
    per token: min[π·A, max(π, 1-ε)·A] (teacher prob taken as 1); loss = -1/Q Σ_q 1/G Σ_i 1/|o_i| Σ_t.
    Questions whose vote status is not ok are skipped. The question is the user turn of the chat template,
    the trace the assistant turn; only its tokens carry loss. Writes metrics.jsonl, checkpoints in Hugging
    Face format (resumable with --resume) and OUTPUT/final/. Under `torchrun --nproc-per-node N -m offcurate
    train ...` the model is sharded with FSDP2 over N processes (one per GPU) and each step is split across
    them, with the same result as one process.
    """
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise OffcurateError(MISSING) from None
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
        shuffle=shuffle,
        save_every=save_every,
        keep_last=keep_last,
        resume=resume,
        overwrite=overwrite,
        device=device,
        dtype=dtype.value,
        attn=attn.value,
        gradient_checkpointing=gradient_checkpointing,
        report_to=parse_report_to(report_to),
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_targets=lora_targets,
        merge=merge,
    )
    report = run_training(cfg)
    if report is not None:  # under torchrun only rank 0 reports
        report.print()
