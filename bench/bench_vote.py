"""Benchmark `offcurate vote` against the naive labeling path, and at OpenThoughts3-math scale.

    python bench/bench_vote.py            # subset 32k, N = 212.5k, 4N = 850k; ~25 min on 2 cores
    python bench/bench_vote.py --traces 64000 --subset 16000 --no-markdown   # a quicker look (~5 min)
    python bench/bench_vote.py --variant reused --slow    # the earlier, cache-friendly corpus

1. builds synthetic corpora (``corpus.py``; answers per question by default, ``--variant reused`` for the
   earlier cache-friendly one, ``--slow`` for ~1 pathological answer per 500 traces): the subsets,
   N = traces/4 and 4N = traces (cached in bench/out/, ~35 GB of text and ~9 GB on disk at 850k);
2. runs the naive path (``naive.py``) and `offcurate vote` on each subset, one after the other, and
   asserts the labels (answer, status, cluster, reward) are identical; two sizes, because the ratio
   depends on the size: `vote` pays fixed costs once per run (start-up, one timeout per distinct
   pathological answer), the naive path pays per trace and per question (see BENCHMARKS.md);
3. runs `offcurate vote` on N and 4N: wall time, traces/s, peak RSS of the whole process tree,
   math-verify timeouts and answers dropped; every `vote` row also gives the distinct answer strings of
   its corpus and the share of the answers it read that took an exact fast path (``fastpaths.py``);
4. writes the table into BENCHMARKS.md (between the vote markers), naming the machine and its load.
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


def corpus(path: Path, traces: int, variant: str = "per-question", slow: bool = False) -> Path:
    """The corpus of ``traces`` traces in ``path`` (see ``corpus.py``), generated once (cached)."""
    what = f"{traces} {variant} slow={slow}"
    stamp = path / ".complete"
    if not stamp.exists() or stamp.read_text() != what:
        print(f"generating {traces:,} traces in {path} ...", file=sys.stderr)
        write_corpus(path, traces, max(1, traces // 4000), variant=variant, slow=slow)
        stamp.write_text(what)
    return path


def _corpus(args, traces: int) -> Path:
    name = f"corpus-{args.variant}{'-slow' if args.slow else ''}-{traces}"
    return corpus(args.out / name, traces, args.variant, args.slow)


def distinct_answers(voted: Path) -> int:
    """Distinct non-null answer strings (as written) in `vote`'s output."""
    import polars as pl

    frame = pl.scan_parquet(sorted(voted.rglob("trajectories/*.parquet")))
    return frame.select(pl.col("answer").drop_nulls().n_unique()).collect().item()


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    model = names[0] if names else platform.processor() or "unknown CPU"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def compare_on_subset(size: int, args) -> dict:
    """Naive path and `offcurate vote` on the same corpus, one after the other; labels must be equal."""
    sub = _corpus(args, size)
    start = time.perf_counter()
    naive, naive_timeouts = naive_labels(sub, args.timeout, out=args.out / "naive-out")
    naive_seconds = time.perf_counter() - start
    fast = run_vote(sub, args.out / "voted-subset", args.workers, args.timeout)
    fast["distinct"] = distinct_answers(args.out / "voted-subset")
    problems = compare(naive, fast_labels(args.out / "voted-subset"))
    if problems:
        raise SystemExit("labels differ between the naive path and offcurate vote:\n" + "\n".join(problems))
    print(
        f"subset {size:,}: naive {naive_seconds:.1f} s ({naive_timeouts} timeouts), "
        f"vote {fast['seconds']:.1f} s ({fast['counts'][TIMEOUTS]} timeouts), labels identical",
        file=sys.stderr,
    )
    return {"size": size, "naive": naive_seconds, "naive_timeouts": naive_timeouts, "fast": fast}


TIMEOUTS, DROPPED = "math-verify timeouts", "answers dropped (timeout or >1000 chars)"
READS, FAST_READS = "answers read (parsed)", "answers read by a fast path"


def _row(name: str, traces: int, run: dict, labels: str) -> str:
    counts = run["counts"]
    fast = counts[FAST_READS] / max(counts[READS], 1)
    return (
        f"| {name} | {traces:,} | {run['distinct']:,} | {fast:.0%} | {run['seconds']:.1f} s | "
        f"{traces / run['seconds']:,.0f} | {run['peak_rss'] / 2**30:.2f} GiB | {counts[TIMEOUTS]} | "
        f"{counts[DROPPED]} | {labels} |"
    )


def markdown(args, subsets: list[dict], runs: list[tuple[int, dict]], load: tuple[float, float]) -> str:
    sizes = ",".join(str(s["size"]) for s in subsets)
    lines = [
        BEGIN,
        f"Machine: {machine()}; load average (1 min) {load[0]:.1f} at the start, {load[1]:.1f} at the end. "
        f"Command: `python bench/bench_vote.py --traces {args.traces} --subset {sizes} --variant "
        f"{args.variant}{' --slow' if args.slow else ''}`; per-step timeout {args.timeout} s, workers = all "
        "cores.",
        "",
        "| run | traces | distinct answers | read by a fast path | wall | traces/s | peak RSS (process tree) "
        "| math-verify timeouts | answers dropped | labels |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sub in subsets:
        size = sub["size"]
        lines.append(
            f"| naive path | {size:,} | same | – | {sub['naive']:.1f} s | {size / sub['naive']:,.0f} | – | "
            f"{sub['naive_timeouts']} | same as below | reference |"
        )
        lines.append(_row("`offcurate vote`, same traces", size, sub["fast"], "identical"))
    for traces, run in runs:
        lines.append(_row(f"`offcurate vote`, {'4N' if traces == runs[-1][0] else 'N'}", traces, run, "–"))
    ratios = ", ".join(f"**{s['naive'] / s['fast']['seconds']:.1f}×** on {s['size']:,}" for s in subsets)
    lines += [
        "",
        f"Speed-up on the same traces, labels identical: {ratios} traces (wall time; `vote` includes "
        "its process start-up).",
    ]
    if runs:
        (n, small), (big_n, big) = runs[0], runs[-1]
        low, high = small["peak_rss"], big["peak_rss"]
        lines[-1] += (
            f" Peak RSS {low / 2**30:.2f} GiB at N = {n:,} and {high / 2**30:.2f} GiB at 4N = {big_n:,} "
            f"({high / low:.2f}×)."
        )
    lines += [
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--traces", type=int, default=850_000, help="4N, the largest corpus")
    parser.add_argument(
        "--subset", default="32000", help="comma-separated sizes compared with the naive path"
    )
    parser.add_argument("--variant", choices=["per-question", "reused"], default="per-question")
    parser.add_argument("--slow", action="store_true", help="~1 pathological answer per 500 traces")
    parser.add_argument("--skip-large", action="store_true", help="only the subsets (no N, 4N runs)")
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument(
        "--no-markdown", action="store_true", help="print the table, leave BENCHMARKS.md alone"
    )
    args = parser.parse_args()

    load_start = os.getloadavg()[0]
    subsets = [compare_on_subset(int(size), args) for size in args.subset.split(",")]
    runs = []
    for traces in () if args.skip_large else (args.traces // 4, args.traces):
        run = run_vote(_corpus(args, traces), args.out / "voted", args.workers, args.timeout)
        run["distinct"] = distinct_answers(args.out / "voted")
        print(
            f"N={traces:,}: {run['seconds']:.1f} s, peak {run['peak_rss'] / 2**30:.2f} GiB, "
            f"{run['counts'][TIMEOUTS]} timeouts",
            file=sys.stderr,
        )
        runs.append((traces, run))

    table = markdown(args, subsets, runs, (load_start, os.getloadavg()[0]))
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
