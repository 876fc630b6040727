"""Benchmark `offcurate filter` (before and after issue 21) against its read+write limit, in one run.

    python bench/bench_filter.py                  # 120k raw rows in 12 shards (~2.7 GB), 3 rounds, pipelines
    python bench/bench_filter.py --rows 24000 --rounds 1 --no-pipeline --no-markdown   # a quicker look
    python bench/bench_filter.py --smoke --markdown /tmp/BENCHMARKS.md                 # CI: tiny, every row

1. builds a raw corpus in OpenThoughts3's layout (cached in bench/out/): ``difficulty``, ``source``,
   ``domain``, ``conversations`` [human question, gpt trace]; 71% math, 21% code, 8% science rows (the
   dataset's 850k/250k/100k), 16 traces a question, 20-60 KB each, in Zipf-distributed pseudo-words that
   compress like real traces (~2x with snappy, the dataset's codec; ~3x with zstd), snappy, 1000-row groups;
2. runs, alternately, each round: the read+write limit (one process: a pyarrow read of the 4 columns and a
   write of `filter`'s 7 columns with its writer options, the columns made with plain Arrow kernels),
   `filter` from commit ``--base`` (exported with ``git archive``; the two-pass filter by default), and
   `filter` from this checkout with all cores and with one worker; every side is a child process, its CPU
   time the child and all the workers it waited for; the outputs of before and after are compared byte for
   byte;
3. with ``--pipeline`` (default, not in ``--smoke``): `offcurate pipeline -i RAW` from both checkouts, once;
4. prints the table (medians), the load average at start and end, and the 1.2M-row extrapolation (linear:
   every cost here is per row or per byte), and writes it into BENCHMARKS.md between the filter markers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_rules import export, package_dir  # noqa: E402
from bench_vote import _tree_rss, machine  # noqa: E402

BEGIN, END = "<!-- filter-benchmark:begin -->", "<!-- filter-benchmark:end -->"
FULL_ROWS = 1_200_000
DOMAINS = (("math", 0.71), ("code", 0.21), ("science", 0.08))
SOURCES = {
    "math": "ai2-adapt-dev/openmath-2-math",
    "code": "nvidia/OpenCodeReasoning",
    "science": "stackexchange",
}
RAW_SCHEMA = pa.schema(
    [
        ("difficulty", pa.int64()),
        ("source", pa.string()),
        ("domain", pa.string()),
        ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
    ]
)
_SYLLABLES = (  # noqa: SIM905
    "th e an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi ri "
    "ro ic ne ea ra ce x y k 2 3 = + ( ) \\frac { } ^"
).split()


def filler(size: int, seed: int = 0) -> str:
    """``size`` characters of pseudo-words: 6000 made of syllables, drawn Zipf(1.2), so the text
    compresses ~2.0x with snappy and ~3.0x with zstd (English prose and real traces: about the same)."""
    rng = np.random.default_rng(seed)
    words: set[str] = set()
    while len(words) < 6000:
        words.add("".join(rng.choice(_SYLLABLES, rng.integers(1, 5))))
    tokens = [w.encode() + b" " for w in sorted(words)]
    flat = np.frombuffer(b"".join(tokens), np.uint8)
    lengths = np.array([len(t) for t in tokens])
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    parts, total = [], 0
    while total < size:
        ids = rng.zipf(1.2, 2_000_000) - 1
        ids = ids[ids < len(tokens)]
        sizes = lengths[ids]
        at = np.r_[0, np.cumsum(sizes)[:-1]]
        count = int(sizes.sum())
        parts.append(flat[np.repeat(starts[ids] - at, sizes) + np.arange(count)].tobytes())
        total += count
    return b"".join(parts)[:size].decode("ascii")


def write_raw_corpus(out: Path, rows: int, shards: int, min_kb: int = 20, max_kb: int = 60, seed: int = 0):
    """The raw corpus of the module doc; 16 consecutive rows per question, questions spread over shards."""
    out.mkdir(parents=True, exist_ok=True)
    text = filler(min(64 * 2**20, 2 * rows * max_kb * 1024) + max_kb * 1024, seed)
    rng = np.random.default_rng(seed + 1)
    per_shard = -(-rows // shards)
    names = [name for name, _ in DOMAINS]
    for s in range(shards):
        count = min(per_shard, rows - s * per_shard)
        path = out / f"train-{s:05d}-of-{shards:05d}.parquet"
        with pq.ParquetWriter(path, RAW_SCHEMA, compression="snappy") as writer:
            for first in range(0, count, 1000):
                batch = {name: [] for name in RAW_SCHEMA.names}
                for r in range(first, min(first + 1000, count)):
                    q = (s * per_shard + r) // 16
                    qrng = np.random.default_rng(q)
                    domain = names[qrng.choice(len(DOMAINS), p=[p for _, p in DOMAINS])]
                    at = int(qrng.integers(0, len(text) - 1500))
                    question = f"Problem {q}: " + text[at : at + int(qrng.integers(200, 1500))]
                    size = int(rng.integers(min_kb * 1024, max_kb * 1024))
                    start = int(rng.integers(0, len(text) - size))
                    closed = rng.random() > 0.04
                    trace = f"<think>\n{text[start : start + size]}" + (
                        f"\n</think>\n\nSo the answer is $\\boxed{{{q % 97}}}$." if closed else ""
                    )
                    batch["difficulty"].append(None if q % 11 == 0 else int(q % 10 + 1))
                    batch["source"].append(SOURCES[domain])
                    batch["domain"].append(domain)
                    batch["conversations"].append(
                        [{"from": "human", "value": question}, {"from": "gpt", "value": trace}]
                    )
                writer.write_table(pa.Table.from_pydict(batch, RAW_SCHEMA), row_group_size=1000)
    return out


def corpus(args) -> Path:
    folder = args.out / f"raw-{args.rows}-{args.shards}-{args.min_kb}-{args.max_kb}"
    stamp, what = folder / ".complete", f"{args.rows} {args.shards} {args.min_kb} {args.max_kb} v1"
    if not stamp.exists() or stamp.read_text() != what:
        print(f"generating {args.rows:,} raw rows in {folder} ...", file=sys.stderr, flush=True)
        write_raw_corpus(folder, args.rows, args.shards, args.min_kb, args.max_kb)
        stamp.write_text(what)
    return folder


# --- the sides: each one a child process -------------------------------------------------------------------

LIMIT = """
import sys, json
from pathlib import Path
import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
from offcurate.curate.filter import OUTPUT_SCHEMA
from offcurate.curate.io.shards import ROW_GROUP_ROWS, ShardWriter, list_shards
raw, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
kept = 0
for n, path in enumerate(list_shards(raw)):
    writer, pending = ShardWriter(out / f"{n:05d}.parquet", OUTPUT_SCHEMA), []
    columns = ["difficulty", "source", "domain", "conversations"]
    for batch in pq.ParquetFile(path).iter_batches(batch_size=256, columns=columns, use_threads=False):
        batch = batch.filter(pc.equal(batch.column("domain"), "math"))
        turns = batch.column("conversations")
        question = pc.struct_field(pc.list_element(turns, 0), "value")
        response = pc.struct_field(pc.list_element(turns, 1), "value")
        pending.append(pa.table({
            "question_id": pc.utf8_slice_codeunits(question, 0, 16),
            "sample_idx": pa.array(range(batch.num_rows), pa.int64()),
            "question": question, "response": response,
            "source": batch.column("source"), "difficulty": batch.column("difficulty"),
            "finished": pc.match_substring(response, "</think>"),
        }, schema=OUTPUT_SCHEMA))
        if sum(t.num_rows for t in pending) >= ROW_GROUP_ROWS:
            table = pa.concat_tables(pending)
            writer.write(table.slice(0, ROW_GROUP_ROWS).combine_chunks())
            pending = [table.slice(ROW_GROUP_ROWS)]
    writer.write(pa.concat_tables(pending).combine_chunks())
    writer.close()
    kept += writer.rows
print(json.dumps({"kept trajectories": kept}))
"""

FILTER = """
import json, sys
from pathlib import Path
import offcurate
from offcurate.curate.filter import run_filter
if __name__ == "__main__":
    workers = None if sys.argv[3] == "all" else int(sys.argv[3])
    kwargs = {} if workers is None else {"workers": workers}
    report = run_filter(Path(sys.argv[1]), Path(sys.argv[2]), overwrite=True, **kwargs)
    print(json.dumps({"file": offcurate.__file__, **report.counts}))
"""

PIPELINE = """
import json, sys
from pathlib import Path
from offcurate.curate.pipeline import run_pipeline
if __name__ == "__main__":
    reports = run_pipeline(Path(sys.argv[2]), input_dir=Path(sys.argv[1]), overwrite=True)
    print(json.dumps({r.stage: round(r.seconds, 1) for r in reports}))
"""


def run_child(code: str, args: list[str], pythonpath: Path | None) -> dict:
    """Run ``code`` in a child; wall, CPU (child + waited-for workers), peak RSS of its process tree."""
    env = {**os.environ, **({"PYTHONPATH": str(pythonpath)} if pythonpath else {})}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak, done = 0, threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(child.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = child.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        raise SystemExit(f"a benchmark child failed (exit {child.returncode}):\n{stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = stdout.strip().splitlines()
    return {"wall": seconds, "cpu": cpu, "rss": peak, "counts": json.loads(lines[-1]) if lines else {}}


def digest(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(folder.glob("*.parquet")):
        sha.update(path.name.encode() + path.read_bytes())
    return sha.hexdigest()


def resolve(commit: str) -> str:
    """The commit's short hash (``HEAD`` moves; the export is cached under this name)."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", commit], capture_output=True, text=True, check=True
    )
    return found.stdout.strip()


def sides(args) -> dict[str, tuple[str, list[str], Path | None]]:
    """name -> (code, argv, PYTHONPATH folder); the before side only where ``--base`` can be exported."""
    raw, out = str(args.corpus), args.out
    found = {
        "read+write limit (1 process)": (LIMIT, [raw, str(out / "limit")], package_dir(ROOT, out, "this"))
    }
    try:
        base = package_dir(export(args.base, out), out, "base")
        found[f"`filter` before ({args.base})"] = (FILTER, [raw, str(out / "before"), "all"], base)
    except (subprocess.CalledProcessError, OSError) as err:
        print(f"note: no before side ({args.base} cannot be exported: {err})", file=sys.stderr)
    this = package_dir(ROOT, out, "this")
    found["`filter` after, all cores"] = (FILTER, [raw, str(out / "after"), "all"], this)
    found["`filter` after, 1 worker"] = (FILTER, [raw, str(out / "after-1"), "1"], this)
    return found


def measure(args) -> tuple[dict, dict]:
    runs: dict[str, list[dict]] = {}
    identical = {}
    named = sides(args)
    for round_no in range(args.rounds):
        for name, (code, argv, path) in named.items():
            run = run_child(code, argv, path)
            runs.setdefault(name, []).append(run)
            print(
                f"round {round_no + 1}, {name}: {run['wall']:.1f} s wall, {run['cpu']:.1f} s CPU, "
                f"peak {run['rss'] / 2**30:.2f} GiB",
                file=sys.stderr,
                flush=True,
            )
        before = next((n for n in named if "before" in n), None)
        if before:
            reference = digest(Path(named[before][1][1]))
            for name in named:
                if name.startswith("`filter` after"):
                    identical.setdefault(name, []).append(digest(Path(named[name][1][1])) == reference)
    return runs, identical


def pipelines(args) -> dict[str, dict]:
    raw, out, found = str(args.corpus), args.out, {}
    checkouts = {f"before ({args.base})": export(args.base, out), "after": ROOT}
    for name, checkout in checkouts.items():
        path = package_dir(checkout, out, "base" if checkout != ROOT else "this")
        found[name] = run_child(PIPELINE, [raw, str(out / f"pipeline-{name.split()[0]}")], path)
        print(f"pipeline {name}: {found[name]['wall']:.1f} s wall", file=sys.stderr, flush=True)
    return found


def markdown(args, runs: dict, identical: dict, piped: dict, load: tuple[float, float], info: dict) -> str:
    scale = FULL_ROWS / args.rows
    limit = statistics.median(r["cpu"] for r in runs["read+write limit (1 process)"])
    before = next((n for n in runs if "before" in n), None)
    before_wall = statistics.median(r["wall"] for r in runs[before]) if before else None
    command = "python bench/bench_filter.py" + (" --smoke" if args.smoke else "")
    if not args.smoke and (args.rows, args.shards, args.rounds) != (120_000, 12, 3):
        command += f" --rows {args.rows} --shards {args.shards} --rounds {args.rounds}"
    lines = [
        BEGIN,
        f"Machine: {machine()}; load average (1 min) {load[0]:.1f} at the start, {load[1]:.1f} at the end. "
        f"Command: `{command}`. Corpus: {args.rows:,} raw rows in {args.shards} shards, "
        f"{info['bytes'] / 2**30:.2f} GiB (snappy), {info['kept']:,} math trajectories kept; input in page "
        f"cache; medians of {args.rounds} alternating round(s).",
        "",
        "| side | CPU | CPU vs limit | wall | wall vs before | peak RSS (tree) | output "
        "| 1.2M rows: CPU, wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, measured in runs.items():
        cpu = statistics.median(r["cpu"] for r in measured)
        wall = statistics.median(r["wall"] for r in measured)
        rss = max(r["rss"] for r in measured)
        same = identical.get(name)
        output = (
            "reference"
            if name == before
            else ("–" if same is None else "identical" if all(same) else "DIFFERS")
        )
        versus = f"{wall / before_wall:.2f}x" if before_wall and name.startswith("`filter`") else "–"
        lines.append(
            f"| {name} | {cpu:.1f} s | {cpu / limit:.2f}x | {wall:.1f} s | {versus} | "
            f"{rss / 2**30:.2f} GiB | {output} | {cpu * scale / 60:.1f} min, {wall * scale / 60:.1f} min |"
        )
    for name, run in piped.items():
        lines.append(
            f"| `pipeline` {name} | {run['cpu']:.1f} s | – | {run['wall']:.1f} s | – | "
            f"{run['rss'] / 2**30:.2f} GiB | – | {run['cpu'] * scale / 60:.1f} min, "
            f"{run['wall'] * scale / 60:.1f} min |"
        )
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=120_000)
    parser.add_argument("--shards", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-kb", type=int, default=20)
    parser.add_argument("--max-kb", type=int, default=60)
    parser.add_argument("--base", default="44731dd", help="the commit measured as 'before'")
    parser.add_argument("--no-pipeline", dest="pipeline", action="store_false")
    parser.add_argument("--smoke", action="store_true", help="480 rows of 2-6 KB, 1 round, no pipeline")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "filter")
    parser.add_argument(
        "--markdown", type=Path, default=ROOT / "BENCHMARKS.md", help="file to write the table in"
    )
    parser.add_argument("--no-markdown", action="store_true", help="print the table only")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.shards, args.rounds, args.min_kb, args.max_kb = 480, 3, 1, 2, 6
        args.pipeline = False
        if "--base" not in sys.argv:
            args.base = "HEAD"
    args.out = args.out.resolve()
    args.corpus = corpus(args)
    try:
        args.base = resolve(args.base)
    except (subprocess.CalledProcessError, OSError) as err:
        print(f"note: {args.base} is not a commit here ({err})", file=sys.stderr)

    load_start = os.getloadavg()[0]
    runs, identical = measure(args)
    piped = pipelines(args) if args.pipeline else {}
    info = {
        "bytes": sum(p.stat().st_size for p in args.corpus.glob("*.parquet")),
        "kept": runs["`filter` after, all cores"][0]["counts"]["kept trajectories"],
    }
    table = markdown(args, runs, identical, piped, (load_start, os.getloadavg()[0]), info)
    print(table)
    if not args.no_markdown:
        path = args.markdown
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        if BEGIN in text:
            text = text[: text.index(BEGIN)] + table + text[text.index(END) + len(END) :]
        else:
            text += "\n## filter: OpenThoughts3 rows at their read+write limit\n\n" + table + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
