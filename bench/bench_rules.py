"""Throughput of `offcurate vote` before and after the answer rules of issue 11, on the same traces.

    python bench/bench_rules.py --traces 12000 --base b6338e8 --rounds 4     # ~5 min on 2 busy cores
    python bench/bench_rules.py --traces 32000 --base 44731dd --variant per-question --no-slow   # issue 21

Builds one synthetic corpus (``corpus.py``, cached in bench/out/), exports commit ``--base`` with
``git archive`` into bench/out/base-<commit> (the git metadata is not touched), and runs `offcurate vote`
from each checkout in turn (base, this checkout, base, this checkout, ...) so both sides see the same load.
Each run is a child process whose ``offcurate`` is that checkout: a folder holding a link named
``offcurate`` to the checkout's root is put first on PYTHONPATH (the package maps the root to
``offcurate``), which the spawned workers inherit. Prints wall time and CPU time (the child and all the
workers it waited for: less sensitive than wall time to other jobs on the machine) per run, their
medians per side, and the change in throughput; labels are not compared (the rules change some by
design).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_vote import corpus, machine  # noqa: E402


def export(commit: str, out: Path) -> Path:
    """The tree of ``commit`` under ``out/base-<commit>`` (once), via ``git archive``."""
    target = out / f"base-{commit}"
    if not (target / "__init__.py").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = out / f"base-{commit}.tar"
        subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), commit], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        archive.unlink()
    return target


def package_dir(checkout: Path, out: Path, name: str) -> Path:
    """A folder whose only entry is ``offcurate`` -> ``checkout``, for PYTHONPATH."""
    folder = out / f"pythonpath-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "offcurate"
    if link.is_symlink() and link.resolve() != checkout.resolve():
        link.unlink()
    if not link.exists():
        link.symlink_to(checkout.resolve(), target_is_directory=True)
    return folder


def run_vote(path_dir: Path, corpus_dir: Path, out: Path, workers: int | None, timeout: float) -> dict:
    code = (
        "import json; from pathlib import Path\n"
        "import offcurate; from offcurate.curate.vote import run_vote\n"
        "if __name__ == '__main__':\n"
        f"    r = run_vote(Path({str(corpus_dir)!r}), Path({str(out)!r}), workers={workers!r}, "
        f"timeout={timeout!r}, overwrite=True)\n"
        "    print(json.dumps({'file': offcurate.__file__, **r.counts}))"
    )
    env = {**os.environ, "PYTHONPATH": str(path_dir)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child and every worker it waited for
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"vote failed ({path_dir}):\n{done.stderr[-2000:]}")
    return {"seconds": seconds, "cpu": cpu, "counts": json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--traces", type=int, default=12_000)
    parser.add_argument("--base", default="b6338e8")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--variant", choices=["reused", "per-question"], default="reused", help="corpus.py's")
    parser.add_argument("--no-slow", dest="slow", action="store_false", help="no pathological answers")
    args = parser.parse_args()

    name = f"corpus-{args.traces}"  # the earlier corpus keeps its folder
    if (args.variant, args.slow) != ("reused", True):
        name += f"-{args.variant}" + ("-slow" if args.slow else "")
    data = corpus(args.out / name, args.traces, args.variant, args.slow)
    sides = {
        f"base {args.base}": package_dir(export(args.base, args.out), args.out, "base"),
        "this checkout": package_dir(ROOT, args.out, "this"),
    }
    load = [os.getloadavg()[0]]
    times: dict[str, list[float]] = {name: [] for name in sides}
    cpus: dict[str, list[float]] = {name: [] for name in sides}
    for round_no in range(args.rounds):
        for name, path_dir in sides.items():
            run = run_vote(path_dir, data, args.out / "voted-rules", args.workers, args.timeout)
            times[name].append(run["seconds"])
            cpus[name].append(run["cpu"])
            counts = run["counts"]
            print(
                f"round {round_no + 1}, {name} ({counts['file']}): {run['seconds']:.1f} s wall, "
                f"{run['cpu']:.1f} s CPU, "
                f"{args.traces / run['seconds']:,.0f} traces/s, answered {counts['answered']}, "
                f"ok {counts['status ok']}, timeouts {counts['math-verify timeouts']}",
                flush=True,
            )
    load.append(os.getloadavg()[0])
    print(
        f"\nMachine: {machine()}; load average (1 min) {load[0]:.1f} at the start, {load[1]:.1f} at the end"
    )
    print(f"{args.traces:,} traces, {args.rounds} rounds, workers = {args.workers or 'all cores'}")
    for name in sides:
        walls = ", ".join(f"{s:.1f}" for s in times[name])
        cpu = ", ".join(f"{s:.1f}" for s in cpus[name])
        wall = statistics.median(times[name])
        print(
            f"{name}: wall {walls} s (median {wall:.1f} s = {args.traces / wall:,.0f} traces/s); "
            f"CPU {cpu} s (median {statistics.median(cpus[name]):.1f} s)"
        )
    for what, (base, new) in (("wall time", times.values()), ("CPU time", cpus.values())):
        change = 100 * (statistics.median(base) / statistics.median(new) - 1)
        print(f"throughput change, median {what}: {change:+.1f}%")


if __name__ == "__main__":
    main()
