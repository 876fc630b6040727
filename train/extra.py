"""The ``train`` extra (torch + transformers): one check and one install hint for every command that needs it.

    require_train_extra("offcurate train")   # OffcurateError (one line, exit 2) naming both ways to install

``pip install 'offcurate[train]'`` alone did not fit an editable checkout, and on a machine without a GPU it
pulls the multi-GB CUDA build of torch; the hint says how to get a CPU-only torch first.
"""

from __future__ import annotations

from ..curate.io.errors import OffcurateError

CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def install_hint() -> str:
    """How to install the extra, from a checkout or from an index, and the CPU-only torch to put first."""
    return (
        "in a checkout, pip install -e \".[train]\"; otherwise pip install 'offcurate[train]' "
        f"(no GPU? first a CPU-only torch: {CPU_TORCH})"
    )


def require_train_extra(what: str) -> None:
    """Import torch and transformers, or raise a one-line error saying how to install them."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise OffcurateError(f"{what} needs torch and transformers: {install_hint()}") from None
