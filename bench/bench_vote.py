"""Benchmark `offcurate vote` against the naive labeling path, and at OpenThoughts3-math scale.

    python bench/bench_vote.py                      # 850k traces (~35 GB of text, ~9 GB on disk), ~20 min
    python bench/bench_vote.py --traces 200000 --subset 4000 --no-markdown   # a quicker look

1. builds synthetic corpora (``corpus.py``): a subset, N = traces/4 and 4N = traces;
2. runs the naive path (``naive.py``) and `offcurate vote` on the subset in one run and asserts the
   labels (answer, status, cluster, reward) are identical;
3. runs `offcurate vote` on N and 4N: wall time, traces/s, peak RSS of the whole process tree, timeouts;
4. writes the table into BENCHMARKS.md (between the vote markers), naming the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import write_corpus  # noqa: E402
from naive import compare, fast_labels, naive_labels  # noqa: E402

BEGIN, END = "<!-- vote-benchmark:begin -->", "<!-- vote-benchmark:end -->"


def _tree_rss(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in bytes (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack += [int(c) for c in children.read().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total


def run_vote(corpus: Path, out: Path, workers: int | None, timeout: float) -> dict:
    """`offcurate vote` in a child process; returns its counts, wall time and peak tree RSS."""
    code = (
        "import json, sys; from pathlib import Path; from offcurate.curate.vote import run_vote\n"
        "if __name__ == '__main__':\n"
        f"    r = run_vote(Path({str(corpus)!r}), Path({str(out)!r}), workers={workers!r}, "
        f"timeout={timeout!r}, overwrite=True)\n"
        "    print(json.dumps(r.counts))"
    )
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(child.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"vote failed on {corpus} (exit {child.returncode})")
    counts = json.loads(stdout.decode().strip().splitlines()[-1])
    return {"seconds": time.perf_counter() - start, "peak_rss": peak, "counts": counts}


def corpus(path: Path, traces: int) -> Path:
    stamp = path / ".complete"
    if not stamp.exists() or stamp.read_text() != str(traces):
        print(f"generating {traces:,} traces in {path} ...", file=sys.stderr)
        write_corpus(path, traces, max(1, traces // 4000))
        stamp.write_text(str(traces))
    return path


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    model = names[0] if names else platform.processor() or "unknown CPU"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def markdown(args, subset: dict, runs: list[tuple[int, dict]]) -> str:
    naive_rate = args.subset / subset["naive_seconds"]
    fast_rate = args.subset / subset["fast"]["seconds"]
    full_rate = runs[-1][0] / runs[-1][1]["seconds"]
    lines = [
        BEGIN,
        f"Machine: {machine()}. Command: `python bench/bench_vote.py --traces {args.traces} "
        f"--subset {args.subset}`; per-step timeout {args.timeout} s, workers = all cores.",
        "",
        "| run | traces | wall | traces/s | peak RSS (process tree) | answers dropped (timeouts) | labels |",
        "|---|---|---|---|---|---|---|",
        f"| naive path (subset) | {args.subset:,} | {subset['naive_seconds']:.1f} s | {naive_rate:,.0f} "
        "| – | – | reference |",
        f"| `offcurate vote` (same subset) | {args.subset:,} | {subset['fast']['seconds']:.1f} s | "
        f"{fast_rate:,.0f} | {subset['fast']['peak_rss'] / 2**30:.2f} GiB | "
        f"{subset['fast']['counts']['answers dropped (timeout or >1000 chars)']} | identical |",
    ]
    for traces, run in runs:
        lines.append(
            f"| `offcurate vote` (N = {traces:,}) | {traces:,} | {run['seconds']:.1f} s | "
            f"{traces / run['seconds']:,.0f} | {run['peak_rss'] / 2**30:.2f} GiB | "
            f"{run['counts']['answers dropped (timeout or >1000 chars)']} | – |"
        )
    lines += [
        "",
        f"Speed-up on the same subset: **{fast_rate / naive_rate:.1f}×** (includes the fixed start-up of the "
        f"process pools); throughput at full scale vs the naive path: **{full_rate / naive_rate:.1f}×**.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--traces", type=int, default=850_000, help="4N, the largest corpus")
    parser.add_argument("--subset", type=int, default=32_000, help="traces compared with the naive path")
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument(
        "--no-markdown", action="store_true", help="print the table, leave BENCHMARKS.md alone"
    )
    args = parser.parse_args()

    sub = corpus(args.out / f"corpus-{args.subset}", args.subset)
    start = time.perf_counter()
    naive = naive_labels(sub, args.timeout, out=args.out / "naive-out")
    naive_seconds = time.perf_counter() - start
    fast = run_vote(sub, args.out / "voted-subset", args.workers, args.timeout)
    problems = compare(naive, fast_labels(args.out / "voted-subset"))
    if problems:
        raise SystemExit("labels differ between the naive path and offcurate vote:\n" + "\n".join(problems))
    print(
        f"subset: naive {naive_seconds:.1f} s, vote {fast['seconds']:.1f} s, labels identical",
        file=sys.stderr,
    )

    runs = []
    for traces in (args.traces // 4, args.traces):
        run = run_vote(
            corpus(args.out / f"corpus-{traces}", traces), args.out / "voted", args.workers, args.timeout
        )
        print(
            f"N={traces:,}: {run['seconds']:.1f} s, peak {run['peak_rss'] / 2**30:.2f} GiB", file=sys.stderr
        )
        runs.append((traces, run))

    table = markdown(args, {"naive_seconds": naive_seconds, "fast": fast}, runs)
    print(table)
    if not args.no_markdown:
        path = HERE.parent / "BENCHMARKS.md"
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        if BEGIN in text:
            text = text[: text.index(BEGIN)] + table + text[text.index(END) + len(END) :]
        else:
            text += "\n## vote: labeling at OpenThoughts3 scale\n\n" + table + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
