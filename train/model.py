"""Model side of a training step: loading, packed attention, checkpointing and chunked log-probs.

    model = load_model("Qwen/Qwen2.5-1.5B-Instruct", precision, attn="auto")
    logp = packed_logprobs(model, micro_batch, chunk=1024, precision=precision)

Why each piece: a 150k-token vocabulary makes the [tokens x vocab] logits the largest tensor of a step
(16K tokens -> 10 GB in float32), so log-probs are computed from the final hidden states chunk by chunk
(lm_head + logsumexp under activation checkpointing, recomputed in backward) and only at response tokens.
Packed rows need attention that stops at trajectory boundaries: on CUDA the ``offcurate_varlen`` attention
calls PyTorch's flash varlen kernel with ``cu_seqlens`` (no mask at all); elsewhere SDPA gets the
block-diagonal mask transformers derives from the restarting position ids.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..curate.io.errors import OffcurateError
from .packing import MicroBatch

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

VARLEN = "offcurate_varlen"
ATTN_CHOICES = ("auto", "sdpa", "varlen", "flash_attention_2", "eager")
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


def _find_varlen_kernel() -> tuple[Callable | None, dict[str, Any], bool, bool]:
    """PyTorch's flash varlen attention (torch >= 2.9), its causal keyword, GQA and scale support.

    The keywords moved between releases (``is_causal`` first, then ``window_size=(-1, 0)``).
    """
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None, {}, False, False
    params = inspect.signature(varlen_attn).parameters
    if "window_size" in params:
        causal = {"window_size": (-1, 0)}
    elif "is_causal" in params:
        causal = {"is_causal": True}
    else:
        return None, {}, False, False
    return varlen_attn, causal, "enable_gqa" in params, "scale" in params


# looked up once at import, so nothing is inspected inside a compiled region
_VARLEN_KERNEL, _VARLEN_CAUSAL, _VARLEN_GQA, _VARLEN_SCALE = _find_varlen_kernel()


def _kernel_for(q: torch.Tensor) -> Callable | None:
    """The flash varlen kernel when it can run on ``q`` (CUDA, half precision), else None (SDPA loop)."""
    if q.is_cuda and q.dtype in (torch.bfloat16, torch.float16):
        return _VARLEN_KERNEL
    return None


def varlen_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """A transformers attention function for packed rows: per-trajectory causal attention via cu_seqlens.

    query [1, H, T, D], key/value [1, Hkv, T, D] -> [1, T, H, D]. On CUDA one flash varlen call; on CPU a
    loop of causal SDPA per trajectory (slow, but the same boundaries: the packing test runs it).
    """
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None:
        raise ValueError("offcurate_varlen attention needs cu_seq_lens_q (call through packed_logprobs)")
    if kwargs.get("sliding_window") is not None:
        raise ValueError(
            "offcurate_varlen attention does not support sliding-window layers (use --attn sdpa)"
        )
    if query.shape[0] != 1:
        raise ValueError("offcurate_varlen attention expects one packed row (batch size 1)")
    q, k, v = (x[0].transpose(0, 1) for x in (query, key, value))  # [T, H, D]
    device_type = q.device.type
    if torch.is_autocast_enabled(device_type):  # rotary embeddings promote q, k to fp32 under autocast
        dtype = torch.get_autocast_dtype(device_type)
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    n_rep = q.shape[1] // k.shape[1]
    kernel = _kernel_for(q)
    if kernel is not None:
        max_len = int(kwargs.get("max_length_q") or int((cu[1:] - cu[:-1]).max()))
        extra = dict(_VARLEN_CAUSAL)
        if scaling is not None and _VARLEN_SCALE:
            extra["scale"] = scaling  # without the keyword the kernel uses 1/sqrt(D), Qwen's scaling too
        if n_rep > 1:
            if _VARLEN_GQA:
                extra["enable_gqa"] = True
            else:
                k, v = k.repeat_interleave(n_rep, dim=1), v.repeat_interleave(n_rep, dim=1)
        out = kernel(q.contiguous(), k.contiguous(), v.contiguous(), cu, cu, max_len, max_len, **extra)
        return out.unsqueeze(0), None
    bounds = cu.tolist()
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        qs, ks, vs = (x[a:b].transpose(0, 1) for x in (q, k, v))  # [H, l, D]
        if n_rep > 1:
            ks, vs = ks.repeat_interleave(n_rep, dim=0), vs.repeat_interleave(n_rep, dim=0)
        parts.append(
            F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scaling).transpose(0, 1)
        )
    return torch.cat(parts, 0).unsqueeze(0), None


def register_varlen() -> bool:
    """Register ``offcurate_varlen`` with transformers (attention + "no mask" mask function)."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, flash_attention_mask
    except ImportError:
        return False
    AttentionInterface.register(VARLEN, varlen_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(VARLEN, flash_attention_mask)
    return True


def pick_attention(name: str, device: torch.device, config: PretrainedConfig) -> str:
    """``auto``: the varlen kernel on CUDA when PyTorch has it (and no sliding window), else SDPA."""
    if name not in ATTN_CHOICES:
        raise OffcurateError(f"--attn must be one of {', '.join(ATTN_CHOICES)}, got {name!r}")
    if name == "auto":
        sliding = getattr(config, "use_sliding_window", False)
        ok = device.type == "cuda" and _VARLEN_KERNEL is not None and not sliding
        name = "varlen" if ok else "sdpa"
    if name == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise OffcurateError("--attn flash_attention_2 needs the flash-attn package (or use --attn auto)")
    if name == "varlen":
        if not register_varlen():
            raise OffcurateError("--attn varlen needs transformers >= 4.48 (AttentionInterface)")
        return VARLEN
    return name


def set_attention(model: PreTrainedModel, implementation: str) -> None:
    """Switch the attention implementation of a loaded model (registered names included)."""
    if implementation == VARLEN:
        register_varlen()
    setter = getattr(model, "set_attn_implementation", None)
    if setter is not None:
        try:
            setter(implementation)
            return
        except (ValueError, KeyError, ImportError, AttributeError):
            pass
    model.config._attn_implementation = implementation


def load_config(source: str | Path) -> PretrainedConfig:
    """The model's config alone (no weights), so options can be checked against it before the load."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as err:  # ValueError: an unknown or missing model_type
        raise OffcurateError(f"--model {source}: cannot load it ({str(err).splitlines()[0]})") from None


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

    A folder or id that is not a causal LM (missing weights: OSError; e.g. a T5 config: ValueError) is a
    one-line error naming ``--model``.
    """
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    config = load_config(source) if config is None else config
    implementation = pick_attention(attn, device, config)
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    dtype_key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source, config=config, **{dtype_key: precision.param_dtype}
        )
    except (OSError, ValueError) as err:
        raise OffcurateError(f"--model {source}: cannot load it ({str(err).splitlines()[0]})") from None
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
    for start in range(0, hidden.shape[0], chunk):
        h, t = hidden[start : start + chunk], targets[start : start + chunk]
        if torch.is_grad_enabled():
            parts.append(checkpoint(_chunk_logprobs, h, weight, bias, t, use_reentrant=False))
        else:
            parts.append(_chunk_logprobs(h, weight, bias, t))
    if not parts:
        return hidden.new_zeros(0, dtype=torch.float32)
    return torch.cat(parts)


def packed_logprobs(
    model: PreTrainedModel | PackedPolicy, mb: MicroBatch, precision: Precision, chunk: int = 1024
) -> torch.Tensor:
    """log π of every response token of a packed micro-batch (float32, [M]).

    A ``PackedPolicy`` (the sharded runs' root module) is called instead, so its FSDP hooks fire.
    """
    if isinstance(model, PackedPolicy):
        return model(mb.input_ids, mb.position_ids, mb.pred_index, mb.targets, mb.cu_seqlens, mb.max_seqlen)
    return _packed_logprobs(model, mb, precision, chunk)


def _packed_logprobs(
    model: PreTrainedModel, mb: MicroBatch, precision: Precision, chunk: int
) -> torch.Tensor:
    device = mb.input_ids.device
    extra = {}
    if model.config._attn_implementation in (VARLEN, "flash_attention_2", "flash_attention_3"):
        extra = dict(cu_seq_lens_q=mb.cu_seqlens, cu_seq_lens_k=mb.cu_seqlens)
        extra.update(max_length_q=mb.max_seqlen, max_length_k=mb.max_seqlen)
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

    def __init__(self, model: PreTrainedModel, precision: Precision, chunk: int = 1024):
        super().__init__()
        self.model, self.precision, self.chunk = model, precision, chunk

    def forward(
        self, input_ids, position_ids, pred_index, targets, cu_seqlens, max_seqlen: int
    ) -> torch.Tensor:
        mb = MicroBatch(input_ids, position_ids, cu_seqlens, max_seqlen, pred_index, targets, None, None, [])
        return _packed_logprobs(self.model, mb, self.precision, self.chunk)


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (a tied embedding counted once), as the anchor's 6N counts them."""
    return sum(p.numel() for p in model.parameters())
