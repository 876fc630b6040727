"""Benchmark files with gold answers (MATH-500, AIME, AMC, Minerva math, ...), read into one shape.

    from offcurate.eval.benchmarks import load_benchmarks
    math500, aime = load_benchmarks([Path("math500.jsonl"), Path("aime24.parquet")])
    math500.name, math500.problems      # "math500", DataFrame[question_id, question, gold]

A benchmark is a JSONL file, a Parquet file or a folder of Parquet shards; its name is the file stem (the
folder name for a folder). The question is the ``question`` column, else ``problem``. The gold is the
``answer`` column, else the final answer's boxes in ``solution`` (``boxes.final_boxes``, read as a
trace's; Minerva math keeps its gold there).
Public files store answers as strings, ints or floats (AMC23: ``27.0``), so a numeric gold becomes the
string a person would write (``27``, ``0.5``) before math-verify sees it. Anything unusable stops the
run with one line naming the file, row and column: a silently skipped problem would change the score.
A question given twice with the same gold is one problem, counted once (``duplicates`` says how many
rows were folded, and eval's summary reports them); twice with different golds is an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..curate.answers.boxes import final_boxes
from ..curate.formats.canonical import gold_text  # one reading of a gold, in eval as in filter
from ..curate.io.errors import InputError
from ..curate.io.ids import question_id
from ..curate.io.shards import list_shards, read_table

QUESTION_COLUMNS = ("question", "problem")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its name, where it came from, and one row per problem in file order."""

    name: str
    path: Path
    problems: pl.DataFrame  # question_id, question, gold (all strings), one row per question
    duplicates: int = 0  # rows that repeated an earlier question with the same gold (counted once)


def _rows_jsonl(path: Path) -> list[tuple[str, dict]]:
    """(where, row) for each non-empty line; ``where`` names the 1-based line number."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the file ({err})") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: line {number} is not valid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}: line {number} is not a JSON object")
        rows.append((f"line {number}", row))
    return rows


def _rows_parquet(path: Path) -> list[tuple[str, dict]]:
    """(where, row) for each row of each shard; ``where`` names the shard and the 1-based row number."""
    rows = []
    for shard in list_shards(path):
        for number, row in enumerate(read_table(shard).to_pylist(), start=1):
            rows.append((f"{shard.name} row {number}" if shard != path else f"row {number}", row))
    return rows


def _pick(columns: set[str], path: Path) -> tuple[str, str]:
    """The question column and the gold column (``answer`` or ``solution``) of a benchmark."""
    question = next((c for c in QUESTION_COLUMNS if c in columns), None)
    if question is None:
        found = ", ".join(sorted(columns)) or "none"
        raise InputError(f"{path}: missing column 'question' or 'problem' (columns found: {found})")
    gold = next((c for c in ("answer", "solution") if c in columns), None)
    if gold is None:
        found = ", ".join(sorted(columns))
        raise InputError(
            f"{path}: missing column 'answer' (or 'solution' with the gold in its last \\boxed{{}}); "
            f"columns found: {found}"
        )
    return question, gold


def load_benchmark(path: Path) -> Benchmark:
    """Read one benchmark file (or folder of shards) into ``question_id, question, gold``."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file() and path.suffix == ".jsonl":
        rows = _rows_jsonl(path)
    elif path.is_dir() or path.suffix == ".parquet":
        rows = _rows_parquet(path)
    else:
        raise InputError(f"{path}: a benchmark is a .jsonl file, a .parquet file or a folder of shards")
    if not rows:
        raise InputError(f"{path}: the benchmark holds no problems")
    question_col, gold_col = _pick(set().union(*(row.keys() for _, row in rows)), path)
    questions, golds = [], []
    for where, row in rows:
        question = row.get(question_col)
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"{path}: {where}: column '{question_col}' is empty or not a string")
        value = row.get(gold_col)
        gold = final_boxes(value) if gold_col == "solution" and isinstance(value, str) else gold_text(value)
        if gold is None:
            what = "has no \\boxed{} answer" if gold_col == "solution" else "is empty or not a number/string"
            raise InputError(f"{path}: {where}: column '{gold_col}' {what} ({str(value)[:60]!r})")
        questions.append(question)
        golds.append(gold)
    problems = pl.DataFrame(
        {"question_id": [question_id(q) for q in questions], "question": questions, "gold": golds},
        schema={"question_id": pl.String, "question": pl.String, "gold": pl.String},
    )
    conflicts = problems.group_by("question_id", maintain_order=True).agg("question", "gold")
    conflicts = conflicts.filter(pl.col("gold").list.n_unique() > 1)
    if conflicts.height:
        _, question, gold = conflicts.row(0)
        raise InputError(
            f"{path}: the question {question[0][:60]!r} has conflicting golds {gold[0]!r} and "
            f"{next(g for g in gold if g != gold[0])!r} ({conflicts.height} such questions)"
        )
    unique = problems.unique("question_id", keep="first", maintain_order=True)
    return Benchmark(
        name=path.stem if path.is_file() else path.name,
        path=path,
        problems=unique,
        duplicates=problems.height - unique.height,
    )


def expand_pattern(path: Path) -> list[Path]:
    """``-b 'DIR/*.jsonl'`` (quoted, so the shell leaves it): the files it matches, sorted; a path that
    exists, or holds no wildcard, as it is. A pattern that matches nothing is named."""
    if path.exists() or not any(c in str(path) for c in "*?["):
        return [path]
    found = sorted(path.parent.glob(path.name)) if not any(c in str(path.parent) for c in "*?[") else []
    if not found:
        raise InputError(f"{path}: the pattern matches no file")
    return found


def load_benchmarks(paths: Sequence[Path | Benchmark]) -> list[Benchmark]:
    """Read several benchmarks (already loaded ones pass through); their names (file stems) must
    differ, as results are keyed by name."""
    if not paths:
        raise InputError("no benchmark given (pass --benchmark FILE, once per benchmark)")
    paths = [q for p in paths for q in ([p] if isinstance(p, Benchmark) else expand_pattern(Path(p)))]
    benchmarks = [p if isinstance(p, Benchmark) else load_benchmark(p) for p in paths]
    seen: dict[str, Path] = {}
    for bench in benchmarks:
        if bench.name in seen:
            raise InputError(
                f"{bench.path}: benchmark name '{bench.name}' is also the name of {seen[bench.name]} "
                "(names are file stems; rename one file)"
            )
        seen[bench.name] = bench.path
    return benchmarks


def benchmark_questions(benchmarks: list[Benchmark]) -> pl.DataFrame:
    """``benchmark, question_id, question`` of every problem: what a generator must sample answers for."""
    return pl.concat(
        [b.problems.select(pl.lit(b.name).alias("benchmark"), "question_id", "question") for b in benchmarks]
    )
