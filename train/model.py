"""Model side of a training step: loading, checkpointing and chunked log-probs (attention: ``attention``).

    model = load_model("Qwen/Qwen2.5-1.5B-Instruct", precision, attn="auto")
    logp = packed_logprobs(PackedPolicy(model, precision, chunk=1024), micro_batch)

Why each piece: a 150k-token vocabulary makes the [tokens x vocab] logits the largest tensor of a step
(16K tokens -> 10 GB in float32), so log-probs are computed from the final hidden states chunk by chunk
(lm_head + logsumexp under activation checkpointing, recomputed in backward) and only at response tokens.
Packed rows stop attending at trajectory boundaries (``attention``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..curate.io.errors import OffcurateError
from .attention import VARLEN, pick_attention, set_attention
from .integrity import weights_problem
from .lora import adapter_base, merge_adapter
from .packing import MicroBatch

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

DTYPE_CHOICES = ("auto", "fp32", "bf16-mixed", "bf16")


@dataclass(frozen=True)
class Precision:
    """Parameter dtype and autocast dtype: fp32 / bf16-mixed (fp32 master weights, bf16 matmuls) / bf16.

    bf16 is the lean mode: bf16 weights need the stochastic-rounding AdamW (``optim``) to learn at all.
    """

    name: str
    param_dtype: torch.dtype
    autocast_dtype: torch.dtype | None

    def autocast(self, device: torch.device) -> torch.autocast:
        if self.autocast_dtype is None:
            return torch.autocast(device.type, enabled=False)
        return torch.autocast(device.type, dtype=self.autocast_dtype)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OffcurateError(f"--device {name}: CUDA is not available on this machine")
    return device


def resolve_precision(name: str, device: torch.device) -> Precision:
    """``auto``: bf16-mixed on CUDA, fp32 on CPU (exact and reproducible; CPU bf16 is slow)."""
    if name not in DTYPE_CHOICES:
        raise OffcurateError(f"--dtype must be one of {', '.join(DTYPE_CHOICES)}, got {name!r}")
    if name == "auto":
        name = "bf16-mixed" if device.type == "cuda" else "fp32"
    if name == "fp32":
        return Precision(name, torch.float32, None)
    if name == "bf16-mixed":
        return Precision(name, torch.float32, torch.bfloat16)
    return Precision(name, torch.bfloat16, None)


def reference_precision(precision: Precision, device: torch.device) -> Precision:
    """The frozen reference model (--beta > 0) under bf16-mixed on CUDA: bf16 weights.

    It is never updated, so fp32 master weights buy nothing: its matmuls run in bf16 under autocast
    anyway, and bf16 halves its memory (3 GB instead of 6 GB for 1.5B). fp32 runs keep an fp32 reference
    (exact), and CPU keeps the policy's precision (no memory pressure, and CPU bf16 is slow).
    """
    if device.type == "cuda" and precision.autocast_dtype == torch.bfloat16:
        return Precision("bf16", torch.bfloat16, None)
    return precision


def check_model_path(source: str | Path) -> None:
    """A --model written as a path (``/x``, ``./x``, ``~/x``, ``a/b/c``) must exist: "no such folder"
    rather than the Hub's "Repo id must be in the form 'repo_name' or 'namespace/repo_name'"."""
    text = str(source)
    if Path(text).expanduser().exists():
        return
    if text.startswith(("/", ".", "~")) or text.count("/") > 1 or "\\" in text or text.endswith("/"):
        raise OffcurateError(f"--model {text}: no such folder")


def load_config(source: str | Path) -> PretrainedConfig:
    """The model's config alone (no weights), so options can be checked against it before the load; a
    LoRA adapter folder (a LoRA run's final/) gives its base model's."""
    from transformers import AutoConfig

    check_model_path(source)
    base = adapter_base(source)
    if base is not None:
        return load_config(base)
    try:
        return AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as err:  # ValueError: an unknown or missing model_type
        raise OffcurateError(_cannot_load(source, err)) from None


def _cannot_load(source: str | Path, err: BaseException) -> str:
    where = "" if Path(str(source)).exists() else "no such folder, and "
    return f"--model {source}: {where}cannot load it ({str(err).splitlines()[0]})"


def check_max_len(config: PretrainedConfig, max_len: int) -> None:
    """Positions past ``max_position_embeddings`` were never trained: refuse before loading any weights."""
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and max_len > positions:
        raise OffcurateError(
            f"--max-len {max_len} is above the model's max_position_embeddings {positions}: "
            f"pass --max-len {positions} or less"
        )


def load_model(
    source: str | Path,
    precision: Precision,
    device: torch.device,
    attn: str = "auto",
    config: PretrainedConfig | None = None,
    place: bool = True,
) -> PreTrainedModel:
    """``from_pretrained`` in the parameter dtype, moved to ``device``, attention chosen for packed rows.

    ``place=False`` leaves the weights in host memory (attention still chosen for ``device``): a sharded
    run's rank 0 reads them there and FSDP sends each rank its shard.

    A folder or id that is not a causal LM (missing weights: OSError; e.g. a T5 config: ValueError), or a
    truncated weights file, is a one-line error naming ``--model``. A LoRA adapter folder (a LoRA run's
    final/) loads as its base with the adapter folded in (``lora.merge_adapter``).
    """
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    config = load_config(source) if config is None else config
    base = adapter_base(source)
    if base is not None:
        model = merge_adapter(load_model(base, precision, device, attn, config, place=False), source)
        return model.to(device) if place else model
    damaged = weights_problem(source)
    if damaged:
        raise OffcurateError(f"--model {source}: {damaged}")
    implementation = pick_attention(attn, device, config)
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    dtype_key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, config=config, **{dtype_key: precision.param_dtype}
        )
    except (OSError, ValueError) as err:
        raise OffcurateError(_cannot_load(source, err)) from None
    set_attention(model, implementation)
    model.config.use_cache = False
    return model.to(device) if place else model


def empty_model(config: PretrainedConfig, precision: Precision, device: torch.device, attn: str = "auto"):
    """The model of ``config`` on the meta device: its structure, no memory (a sharded run's other ranks)."""
    from transformers import AutoModelForCausalLM

    implementation = pick_attention(attn, device, config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=precision.param_dtype)
    set_attention(model, implementation)
    model.config.use_cache = False
    return model


def load_tokenizer(source: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a model folder or Hub id; a missing one is a one-line error."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise OffcurateError(
            f"--model {source}: cannot load its tokenizer ({str(err).splitlines()[0]})"
        ) from None


def enable_checkpointing(model: PreTrainedModel, every_n_layers: int = 1) -> None:
    """Activation checkpointing of decoder layers (non-reentrant); ``every_n_layers`` > 1 is selective."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if every_n_layers > 1:
        layers = [m for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
        for i, layer in enumerate(layers):
            layer.gradient_checkpointing = i % every_n_layers == 0


def decoder(model: PreTrainedModel) -> torch.nn.Module:
    """The transformer body that returns final-normed hidden states (``model.model`` for Qwen/Llama)."""
    getter = getattr(model, "get_decoder", None)
    body = getter() if getter is not None else None
    return body if body is not None else getattr(model, model.base_model_prefix)


def _chunk_logprobs(hidden: torch.Tensor, weight: torch.Tensor, bias, targets: torch.Tensor) -> torch.Tensor:
    logits = F.linear(hidden, weight, bias).float()
    picked = logits.gather(-1, targets[:, None]).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def chunked_logprobs(
    hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor, chunk: int = 1024
) -> torch.Tensor:
    """log softmax(head(hidden))[targets] for [M, d] hidden states, ``chunk`` rows of logits at a time.

    Each chunk runs under checkpoint: only its [chunk] log-probs are kept, its [chunk x vocab] logits are
    recomputed in backward, so peak memory holds one chunk of logits however long the row is.
    """
    weight, bias = head.weight, head.bias
    parts = []
    # no rows still runs one empty chunk: the loss stays connected to the head and the body, so backward
    # runs every rank's collectives and hooks (a sequence-parallel slice can hold only prompt tokens)
    for start in range(0, max(1, hidden.shape[0]), chunk):
        h, t = hidden[start : start + chunk], targets[start : start + chunk]
        if torch.is_grad_enabled():
            parts.append(checkpoint(_chunk_logprobs, h, weight, bias, t, use_reentrant=False))
        else:
            parts.append(_chunk_logprobs(h, weight, bias, t))
    return torch.cat(parts)


def packed_logprobs(policy: PackedPolicy, mb: MicroBatch) -> torch.Tensor:
    """log π of every response token of a packed micro-batch (float32, [M]), through the policy's
    ``forward`` (so a sharded policy's FSDP hooks fire)."""
    return policy(mb.input_ids, mb.position_ids, mb.pred_index, mb.targets, mb.cu_seqlens, mb.max_seqlen)


def _packed_logprobs(
    model: PreTrainedModel, mb: MicroBatch, precision: Precision, chunk: int, sp_group=None
) -> torch.Tensor:
    device = mb.input_ids.device
    extra = {}
    if model.config._attn_implementation in (VARLEN, "flash_attention_2", "flash_attention_3"):
        extra = dict(cu_seq_lens_q=mb.cu_seqlens, cu_seq_lens_k=mb.cu_seqlens)
        extra.update(max_length_q=mb.max_seqlen, max_length_k=mb.max_seqlen)
    if sp_group is not None:  # mb is this rank's slice of the row (ulysses.slice_micro_batch)
        if model.config._attn_implementation != VARLEN:
            raise OffcurateError("sequence parallelism needs the offcurate_varlen attention (--attn varlen)")
        extra["sp_group"] = sp_group
    with precision.autocast(device):
        out = decoder(model)(input_ids=mb.input_ids, position_ids=mb.position_ids, use_cache=False, **extra)
        hidden = out.last_hidden_state[0].index_select(0, mb.pred_index)
        return chunked_logprobs(hidden, model.get_output_embeddings(), mb.targets, chunk)


class PackedPolicy(torch.nn.Module):
    """A causal LM whose ``forward`` is ``packed_logprobs``: the root module a sharded run wraps.

    The step calls the decoder body and the output head separately (never ``model.forward``), so with
    FSDP the module that owns the embedding, final norm and head must be one whose ``forward`` the step
    does call: its root hooks then gather those weights before the step and reduce their gradients
    after. Only integer tensors go in (FSDP's mixed precision casts floating inputs).
    """

    def __init__(self, model: PreTrainedModel, precision: Precision, chunk: int = 1024, sp_group=None):
        super().__init__()
        self.model, self.precision, self.chunk, self.sp_group = model, precision, chunk, sp_group

    def forward(
        self, input_ids, position_ids, pred_index, targets, cu_seqlens, max_seqlen: int
    ) -> torch.Tensor:
        mb = MicroBatch(input_ids, position_ids, cu_seqlens, max_seqlen, pred_index, targets, None, None, [])
        return _packed_logprobs(self.model, mb, self.precision, self.chunk, self.sp_group)


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (a tied embedding counted once), as the anchor's 6N counts them."""
    return sum(p.numel() for p in model.parameters())
