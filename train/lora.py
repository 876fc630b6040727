"""LoRA for ``offcurate train`` (``--lora-r``), with peft: the 7B-on-one-GPU route, sharded or not.

    offcurate train ... --model Qwen/Qwen2.5-7B-Instruct --dtype bf16 --lora-r 64 --merge
    python -m pytest -q tests/test_train_lora.py

The base weights are frozen and only the adapters train (the optimizer holds them alone), so AdamW's
states shrink to the adapters' size. The step is unchanged: peft injects its layers into the Hugging Face
model in place, and the packed log-prob path calls that model's decoder as before. Checkpoints keep the
whole model in their DCP shards (resumable on any number of ranks) and the adapter as a peft folder
(adapter_config.json + adapter_model.safetensors, ``PeftModel.from_pretrained(base, folder)``); with
``--merge`` rank 0 also writes RUN/final-merged/, the base with the adapters folded in
(``peft.merge_and_unload``), a plain transformers model.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ..curate.io.errors import OffcurateError

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel

MISSING = "--lora-r needs the peft package: pip install peft (part of offcurate[train])"
MERGED = "final-merged"


def check_installed() -> None:
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise OffcurateError(MISSING)


def parse_targets(value: str) -> str | list[str]:
    """``all-linear`` (peft: every linear layer but the output head) or comma-separated module names."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise OffcurateError("--lora-targets: give all-linear or module names such as q_proj,v_proj")
    return "all-linear" if names == ["all-linear"] else names


def add_lora(model: PreTrainedModel, r: int, alpha: float, targets: str) -> PeftModel:
    """The model with LoRA adapters (rank ``r``, scale alpha/r, no dropout) on ``targets``; base frozen.

    The adapters' init draws from the torch RNG, which the trainer seeds first: every rank builds the
    same adapters before sharding.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=parse_targets(targets))
    try:
        with _quiet_peft():
            return get_peft_model(model, config)
    except ValueError as err:  # e.g. a target module the model does not have
        raise OffcurateError(f"--lora-targets {targets}: {str(err).splitlines()[0]}") from None


@contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft asks transformers a deprecated question (is_gradient_checkpointing): not the user's concern."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        yield


def inner(model: torch.nn.Module) -> torch.nn.Module:
    """The Hugging Face model the step runs: a PeftModel's, with the adapters injected; else the model."""
    return model.base_model.model if is_lora(model) else model


def is_lora(model: object) -> bool:
    return hasattr(model, "peft_config")


def adapter_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of the inner model keyed as the PeftModel keys it (what its save_pretrained takes)."""
    return {f"base_model.model.{k}": v for k, v in state.items()}


def write_merged(folder: Path, base: PreTrainedModel, adapter: Path, tokenizer) -> None:
    """``base`` with the adapter of ``adapter`` folded in, saved as a plain transformers model."""
    merge_adapter(base, adapter).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def merge_adapter(base: PreTrainedModel, adapter: str | Path) -> PreTrainedModel:
    """``base`` with the peft adapter in folder ``adapter`` folded into its weights (a plain model)."""
    check_installed()
    from peft import PeftModel

    with _quiet_peft():
        return PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()


ADAPTER_CONFIG = "adapter_config.json"


def adapter_base(folder: str | Path) -> str | None:
    """The base model of a peft adapter folder (adapter_config.json and no config.json), else None.

    The base is found where adapter_config.json says (absolute since offcurate writes it so), else beside
    the adapter's run folder under the same name (a LoRA run on tiny-random moved elsewhere, or one written
    before the path was absolute: RUN/final's base RUN/tiny-random); a Hub id is returned as it is.
    """
    folder = Path(str(folder))
    if not (folder / ADAPTER_CONFIG).is_file() or (folder / "config.json").is_file():
        return None
    try:
        base = json.loads((folder / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError) as err:
        raise OffcurateError(f"{folder / ADAPTER_CONFIG}: unreadable ({err})") from None
    if not isinstance(base, str) or not base:
        raise OffcurateError(f"{folder / ADAPTER_CONFIG}: names no base model (base_model_name_or_path)")
    for candidate in (Path(base), folder.resolve().parent / Path(base).name):
        if candidate.is_dir():
            return str(candidate.resolve())
    if base.startswith(("/", ".", "~")) or base.count("/") > 1:  # a path, not a Hub id
        raise OffcurateError(
            f"{folder}: the adapter's base model {base} is gone (a LoRA adapter needs its base; "
            "use the run's final-merged/ from --merge, or put the base back)"
        )
    return base  # a Hub id


def absolute_base(folder: Path) -> None:
    """Record the adapter's base in ``folder`` as an absolute path when it is a local folder, so the
    adapter loads from any working directory (peft stores the path as the run was given it)."""
    path = folder / ADAPTER_CONFIG
    config = json.loads(path.read_text())
    base = config.get("base_model_name_or_path")
    if isinstance(base, str) and base and Path(base).is_dir():
        config["base_model_name_or_path"] = str(Path(base).resolve())
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
