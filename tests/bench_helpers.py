"""Run a bench script the way the lent GPU machine does: a plain checkout, no offcurate installed.

There the repository is copied as a folder (not pip-installed) and the image lacks the curation
dependencies. ``python -S`` skips site-packages' .pth files, so no editable install of offcurate is
visible; the site-packages folders themselves are put back on the path (torch, transformers). ``ABSENT``
are made unimportable the way a missing package is (``None`` in sys.modules: import fails, find_spec
answers None), so a bench script that reached for them would fail here as it would there.
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABSENT = ("offcurate", "polars", "datasets", "math_verify")

_DRIVER = """
import json, runpy, sys
script, site_dirs, absent = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
sys.path.extend(site_dirs)
for name in absent:
    sys.modules[name] = None
sys.argv = [script, *sys.argv[4:]]
sys.path.insert(0, str(__import__("pathlib").Path(script).parent))
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as stop:
    code = stop.code or 0
leaked = [n for n in absent[1:] if sys.modules.get(n) is not None]
where = getattr(sys.modules.get("offcurate"), "__file__", None)
print("BENCH-ENV " + json.dumps({"leaked": leaked, "offcurate": where}))
sys.exit(code)
"""


def run_as_on_gpu_image(
    script: Path, *args: str, timeout: int = 300
) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``script args`` under ``python -S`` with ``ABSENT`` unimportable; return the process and a
    report: which absent packages got imported anyway (``leaked``) and where ``offcurate`` came from."""
    user = [site.getusersitepackages()] if site.ENABLE_USER_SITE else []
    dirs = [d for d in [*site.getsitepackages(), *user] if Path(d).is_dir()]
    result = subprocess.run(
        [sys.executable, "-S", "-c", _DRIVER, str(script), json.dumps(dirs), json.dumps(ABSENT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH-ENV ")]
    report = json.loads(lines[-1].removeprefix("BENCH-ENV ")) if lines else {}
    return result, report
