"""``filter`` writes, byte for byte, what the two-pass filter before it wrote (kept here as the reference),
for any number of workers; and its batch reader decides every row as the one-row rule does.

The reference is the earlier ``run_filter`` (commit 44731dd), reduced to its algorithm: read every row as
Python objects, rank each question's samples by (response digest, shard, row), then read everything again
and write it with ``ShardWriter`` in row groups of 512 rows.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import OT3_SCHEMA

from offcurate.curate.answers.extract import is_finished
from offcurate.curate.filter import OUTPUT_SCHEMA, run_filter
from offcurate.curate.filter_ot3 import OpenThoughts3, keep_row, split_conversation
from offcurate.curate.io.ids import question_id
from offcurate.curate.io.shards import ShardWriter, list_shards, shard_name

# --- the reference: the earlier filter, verbatim in what it decides --------------------------------------


def _old_split(conversations):
    if not conversations:
        return "no_conversation"
    question = next((t for t in conversations if t.get("from") in ("human", "user")), None)
    if question is None:
        return "no_question_turn"
    after = conversations[conversations.index(question) + 1 :]
    teacher = next((t for t in after if t.get("from") in ("gpt", "assistant")), None)
    if teacher is None:
        return "no_teacher_turn"
    if not (question.get("value") or "").strip():
        return "empty_question"
    if not (teacher.get("value") or "").strip():
        return "empty_response"
    return question["value"], teacher["value"]


def _old_rows(path: Path):
    for row_no, row in enumerate(pq.read_table(path).to_pylist()):
        split = "domain" if row["domain"] != "math" else _old_split(row["conversations"])
        yield row_no, row, split


def reference_filter(raw: Path, out: Path) -> Counter:
    """The earlier filter's output files (and its drop counts)."""
    shards, members, dropped = list_shards(raw), defaultdict(list), Counter()
    for shard_no, path in enumerate(shards):
        for row_no, row, split in _old_rows(path):
            if isinstance(split, str):
                dropped[f"domain={row['domain']}" if split == "domain" else split] += 1
            else:
                digest = hashlib.blake2b(split[1].encode(), digest_size=8).digest()
                members[question_id(split[0])].append((digest, shard_no, row_no))
    rank = {(s, r): i for rows in members.values() for i, (_, s, r) in enumerate(sorted(rows))}
    out.mkdir()
    written = []
    for shard_no, path in enumerate(shards):
        buffer, writer = [], None
        for row_no, row, split in list(_old_rows(path)) + [(None, None, None)]:
            if row is not None and not isinstance(split, str):
                question, response = split
                buffer.append(
                    {
                        "question_id": question_id(question),
                        "sample_idx": rank[(shard_no, row_no)],
                        "question": question,
                        "response": response,
                        "source": row["source"],
                        "difficulty": row["difficulty"],
                        "finished": is_finished(response),
                    }
                )
            if buffer and (len(buffer) >= 512 or row is None):
                writer = writer or ShardWriter(out / f".part-{shard_no}", OUTPUT_SCHEMA)
                writer.write(pa.Table.from_pylist(buffer, OUTPUT_SCHEMA))
                buffer = []
        if writer:
            writer.close()
            written.append(writer.path)
    for i, part in enumerate(written):
        part.rename(out / shard_name(i, len(written)))
    return dropped


# --- a raw corpus with every kind of row --------------------------------------------------------------------

WHITESPACE = [" ", "\n", "\t", "\u3000", "\xa0", "\x1c", "\u2028", "\x85"]


def _text(rng: random.Random, size: int) -> str:
    words = ["the", "sum", "équation", "∑", "x^2", "\\frac{1}{2}", "wait", "日本", "\n"]
    return " ".join(rng.choice(words) for _ in range(size))


def _response(rng: random.Random) -> str:
    body = _text(rng, rng.randint(5, 300))
    shape = rng.random()
    if shape < 0.7:
        return f"<think>\n{body}\n</think>\n\nSo $\\boxed{{{rng.randint(0, 9)}}}$."
    if shape < 0.85:
        return f"<think>\n{body}"  # cut inside the thinking: unfinished
    if shape < 0.95:
        return body  # no tags at all
    return rng.choice(WHITESPACE) * rng.randint(1, 3)  # blank


def _turns(rng: random.Random, question: str, response: str):
    shape = rng.random()
    if shape < 0.75:
        return [{"from": "human", "value": question}, {"from": "gpt", "value": response}]
    if shape < 0.82:
        return [{"from": "user", "value": question}, {"from": "assistant", "value": response}]
    if shape < 0.86:
        return [
            {"from": "system", "value": "be brief"},
            {"from": "gpt", "value": "early"},  # a teacher turn before the question does not count
            {"from": "human", "value": question},
            {"from": "gpt", "value": response},
            {"from": "human", "value": "thanks"},
        ]
    if shape < 0.89:
        return [{"from": "human", "value": question}]
    if shape < 0.91:
        return [{"from": "gpt", "value": response}, {"from": None, "value": question}]
    if shape < 0.93:
        return [{"from": "human", "value": None}, {"from": "gpt", "value": response}]
    if shape < 0.95:
        return [{"from": "human", "value": question}, {"from": "gpt", "value": None}]
    if shape < 0.97:
        return []
    return None


def raw_rows(count: int, seed: int) -> list[dict]:
    """Rows of ~count/12 questions, 12 samples each plus duplicates (same response, other metadata),
    whitespace variants of a question, other domains and every unusable shape."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < count:
        q = len(rows)
        question = f"Problem {q}: {_text(rng, rng.randint(3, 30))}"
        if rng.random() < 0.05:
            question = rng.choice(WHITESPACE) * 2
        responses = [_response(rng) for _ in range(12)]
        responses += rng.sample(responses, 2)  # identical trajectories: both kept, ranks tie-broken
        for response in responses:
            asked = question if rng.random() < 0.9 else f"  {question.replace(' ', '  ')}\n"
            domain = rng.choices(["math", "code", "science", None], weights=[80, 10, 8, 2])[0]
            rows.append(
                {
                    "difficulty": rng.choice([None, 1, 5, 10]),
                    "source": rng.choice(["a", "b", None]),
                    "domain": domain,
                    "conversations": _turns(rng, asked, response),
                }
            )
    rng.shuffle(rows)
    return rows[:count]


def write_raw(folder: Path, rows: list[dict], sizes: list[int], schema: pa.Schema = OT3_SCHEMA) -> Path:
    folder.mkdir(parents=True)
    start = 0
    for i, size in enumerate(sizes):
        table = pa.Table.from_pylist(rows[start : start + size], OT3_SCHEMA).cast(schema)
        pq.write_table(table, folder / f"shard-{i:02d}.parquet", row_group_size=300)
        start += size
    return folder


_LARGE_TURN = pa.struct([("from", pa.large_string()), ("value", pa.large_string())])
LARGE = pa.schema(
    [
        ("difficulty", pa.int32()),
        ("source", pa.large_string()),
        ("domain", pa.large_string()),
        ("conversations", pa.large_list(_LARGE_TURN)),
    ]
)
CORPORA = {  # shard sizes (rows), types
    "four_shards_one_without_math": ([1400, 120, 40, 700], OT3_SCHEMA),
    "large_types_int32": ([900, 500], LARGE),
}


@pytest.fixture(scope="module", params=list(CORPORA), ids=list(CORPORA))
def corpus(request, tmp_path_factory):
    sizes, schema = CORPORA[request.param]
    root = tmp_path_factory.mktemp(request.param)
    rows = raw_rows(sum(sizes), seed=len(request.param))
    if request.param == "four_shards_one_without_math":
        for row in rows[1520:1560]:
            row["domain"] = "code"  # shard 2: nothing kept, no output shard for it
    raw = write_raw(root / "raw", rows, sizes, schema)
    dropped = reference_filter(raw, root / "reference")
    return raw, root / "reference", dropped


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.parquet"))}


@pytest.mark.parametrize("workers", [1, 3])
def test_output_is_the_earlier_filters_byte_for_byte(corpus, tmp_path, workers):
    raw, reference, dropped = corpus
    report = run_filter(raw, tmp_path / "out", workers=workers)
    want, got = _files(reference), _files(tmp_path / "out")
    assert list(got) == list(want)
    assert [name for name in want if got[name] != want[name]] == []
    assert dict(report.dropped) == dict(dropped)
    assert pq.ParquetFile(tmp_path / "out" / next(iter(got))).metadata.num_row_groups >= 2
    assert {"empty_question", "empty_response", "no_teacher_turn", "no_question_turn"} <= set(dropped)


def test_a_wrong_rank_changes_the_bytes(corpus, tmp_path, monkeypatch):
    """The comparison above can fail: ranking identical responses the other way round shows up."""
    from offcurate.curate import filter_shard

    def reversed_ties(indexes):
        ranks, questions = rank_samples(indexes)
        return [r[::-1].copy() for r in ranks], questions

    rank_samples = filter_shard.rank_samples
    monkeypatch.setattr("offcurate.curate.filter.rank_samples", reversed_ties)
    raw, reference, _ = corpus
    run_filter(raw, tmp_path / "out", workers=1)
    want, got = _files(reference), _files(tmp_path / "out")
    assert any(got[name] != want[name] for name in want)


def test_batch_reader_decides_each_row_as_the_row_rule(corpus):
    raw, _, _ = corpus
    reader = OpenThoughts3(frozenset({"math", "science"}))
    for path in list_shards(raw):
        table = pq.read_table(path)
        for batch in table.to_batches(max_chunksize=97):  # sliced batches: offsets not at 0
            kept, reasons = reader.read(batch)
            rows = batch.to_pylist()
            want = [keep_row(r["domain"], r["conversations"], {"math", "science"}) for r in rows]
            assert reasons.to_pylist() == [None if keep else why for keep, why in want]
            pairs = [split_conversation(r["conversations"]) for r, (keep, _) in zip(rows, want) if keep]
            assert kept.column("question").to_pylist() == [q for q, _ in pairs]
            assert kept.column("response").to_pylist() == [r for _, r in pairs]
            sources = [r["source"] for r, (keep, _) in zip(rows, want) if keep]
            assert kept.column("source").to_pylist() == sources


def test_a_corrupt_shard_stops_every_worker_and_leaves_no_output(corpus, tmp_path):
    """A page that cannot be decoded in one shard: one line naming that file; the other threads give
    up, and nothing is left where the output would be."""
    from offcurate.curate.io.errors import InputError

    raw, _, _ = corpus
    broken = tmp_path / "raw"
    broken.mkdir()
    for path in list_shards(raw):
        (broken / path.name).write_bytes(path.read_bytes())
    victim = list_shards(broken)[1]
    data = bytearray(victim.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 4096] = bytes(4096)  # zeros over compressed pages; the footer stays readable
    victim.write_bytes(bytes(data))
    with pytest.raises(InputError, match=victim.name):
        run_filter(broken, tmp_path / "out", workers=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]
