"""Make ``import offcurate`` mean the checkout this script lives in, installed or not.

    from checkout import use_this_checkout
    use_this_checkout()                      # in a bench script, before its first offcurate import

Why: the lent GPU machine gets the repository as a plain folder. It is not pip-installed there and cannot
be (polars, datasets and math-verify are not on that image, and nothing can be downloaded), so a bare
``import offcurate`` fails. The package maps the repository root to ``offcurate`` (pyproject's
package-dir: the root ``__init__.py``, ``curate/``, ``train/``, ``rollout/``, ``eval/``, ``data/``), so
the root is registered as the ``offcurate`` package with itself as the search path, and
``offcurate.train`` is then ``train/``.
An ``offcurate`` installed from another checkout is not used either: a benchmark measures the code beside
it. Only what a bench script imports gets loaded (``train.compute``, ``train.model``, ...), none of which
needs the curation dependencies.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
INIT = ROOT / "__init__.py"


def _is_this_checkout(path: str | None) -> bool:
    return path is not None and Path(path).resolve() == INIT


def use_this_checkout() -> ModuleType:
    """The ``offcurate`` package of this checkout: the installed one if it is this folder, else registered."""
    loaded = sys.modules.get("offcurate")
    if loaded is not None:
        if not _is_this_checkout(getattr(loaded, "__file__", None)):
            print(f"note: offcurate was already imported from {loaded.__file__}, not {ROOT}", file=sys.stderr)
        return loaded
    try:
        spec = importlib.util.find_spec("offcurate")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and _is_this_checkout(spec.origin):
        return importlib.import_module("offcurate")
    spec = importlib.util.spec_from_file_location("offcurate", INIT, submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["offcurate"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["offcurate"]
        raise
    return module
