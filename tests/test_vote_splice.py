"""Pass 3 of `vote` by copying column chunks (``curate/vote_splice.py``): the file it makes is the one the
re-encoding path makes, as pyarrow, polars and datasets read it; layouts it cannot copy are refused.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offcurate.curate import vote_splice
from offcurate.curate.filter import OUTPUT_SCHEMA as FILTER_SCHEMA
from offcurate.curate.io.parquet_footer import (
    _BINARY,
    _FILE_CREATED_BY,
    _file_footer,
    _read_struct,
    _set,
    _write_struct,
)
from offcurate.curate.io.shards import ShardWriter
from offcurate.curate.vote_shards import LABEL_FIELDS, TRAJECTORY_SCHEMA
from offcurate.curate.vote_splice import splice_shard

ROWS = 1100


def source_table(rows: int = ROWS) -> pa.Table:
    return pa.table(
        {
            "question_id": [f"q{i // 16:05d}" for i in range(rows)],
            "sample_idx": [i % 16 for i in range(rows)],
            "question": [f"Problem {i // 16}" for i in range(rows)],
            "response": [f"<think>{'word ' * (i % 97)}</think> \\boxed{{{i}}}" for i in range(rows)],
            "source": ["synthetic"] * rows,
            "difficulty": [None if i % 7 == 0 else i % 10 for i in range(rows)],
            "finished": [i % 5 != 0 for i in range(rows)],
        },
        schema=FILTER_SCHEMA,
    )


def label_table(rows: int = ROWS) -> pa.Table:
    return pa.table(
        {
            "answer": [None if i % 5 == 0 else str(i % 13) for i in range(rows)],
            "cluster": [None if i % 5 == 0 else i % 3 for i in range(rows)],
            "reward": [None if i % 4 == 0 else float(i % 3 == 0) for i in range(rows)],
        },
        schema=pa.schema(LABEL_FIELDS),
    )


def reencoded(source: Path, labels: pa.Table, target: Path) -> Path:
    """What pass 3 wrote before: the rows read and written again by ``ShardWriter``."""
    table = pq.read_table(source)
    for name, _ in LABEL_FIELDS:
        table = table.append_column(name, labels[name])
    writer = ShardWriter(target, TRAJECTORY_SCHEMA)
    writer.write(table)
    writer.close()
    return target


LAYOUTS = {  # how the input shard was written: filter's ShardWriter, or pyarrow's defaults
    "shard_writer": lambda table, path: _shard_writer(table, path),
    "write_table_row_groups_of_300": lambda table, path: pq.write_table(
        table, path, compression="zstd", row_group_size=300
    ),
    "one_row_group_snappy": lambda table, path: pq.write_table(table, path),
}


def _shard_writer(table: pa.Table, path: Path) -> None:
    writer = ShardWriter(path, FILTER_SCHEMA)
    writer.write(table)
    writer.close()


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_spliced_file_reads_as_the_reencoded_one(tmp_path, layout):
    source = tmp_path / "in.parquet"
    layout(source_table(), source)
    labels = label_table()
    assert splice_shard(source, labels, tmp_path / "spliced.parquet")
    expected = reencoded(source, labels, tmp_path / "reencoded.parquet")
    got, want = pq.read_table(tmp_path / "spliced.parquet"), pq.read_table(expected)
    assert got.schema.equals(want.schema, check_metadata=True)
    assert got.equals(want)
    assert pq.ParquetFile(tmp_path / "spliced.parquet").metadata.num_row_groups == len(
        pq.ParquetFile(source).metadata.to_dict()["row_groups"]
    )
    assert pl.scan_parquet(tmp_path / "spliced.parquet").collect().equals(pl.read_parquet(expected))
    lazy = pl.scan_parquet(tmp_path / "spliced.parquet").filter(pl.col("cluster") == 0).select("reward")
    assert lazy.collect().height == sum(1 for i in range(ROWS) if i % 5 and i % 3 == 0)


def test_datasets_loads_the_spliced_file(tmp_path):
    import datasets

    source = tmp_path / "in.parquet"
    _shard_writer(source_table(), source)
    assert splice_shard(source, label_table(), tmp_path / "spliced.parquet")
    expected = reencoded(source, label_table(), tmp_path / "reencoded.parquet")
    got = datasets.load_dataset("parquet", data_files=str(tmp_path / "spliced.parquet"), split="train")
    want = datasets.load_dataset("parquet", data_files=str(expected), split="train")
    assert got.features == want.features
    assert got[:] == want[:]


def _other_schema(table: pa.Table, path: Path) -> None:
    pq.write_table(table.append_column("extra", pa.array([1] * table.num_rows)), path)


REFUSED = {
    "page_index": lambda table, path: pq.write_table(table, path, write_page_index=True),
    "bloom_filter": lambda table, path: pq.write_table(
        table, path, bloom_filter_options={"question_id": {"ndv": 100}}
    ),
    "another_column": _other_schema,
    "another_type": lambda table, path: pq.write_table(
        table.set_column(1, "sample_idx", table["sample_idx"].cast(pa.int32())), path
    ),
}


@pytest.mark.parametrize("write", list(REFUSED.values()), ids=list(REFUSED))
def test_layouts_it_cannot_copy_are_refused(tmp_path, write):
    source = tmp_path / "in.parquet"
    try:
        write(source_table(), source)
    except TypeError:
        pytest.skip("this pyarrow cannot write that layout")
    assert not splice_shard(source, label_table(), tmp_path / "spliced.parquet")
    assert not (tmp_path / "spliced.parquet").exists()


def test_label_rows_must_match(tmp_path):
    source = tmp_path / "in.parquet"
    _shard_writer(source_table(), source)
    assert not splice_shard(source, label_table(ROWS - 1), tmp_path / "spliced.parquet")


@pytest.mark.parametrize("rows", [1, 700, ROWS])
def test_footer_codec_round_trips(tmp_path, rows):
    """Reading and writing a footer gives its bytes back: fields the splice does not touch survive."""
    path = tmp_path / "in.parquet"
    pq.write_table(source_table(rows), path, row_group_size=256)
    footer, start = _file_footer(path)
    raw = path.read_bytes()[start:-8]
    encoded = bytearray()
    _write_struct(encoded, footer)
    assert bytes(encoded) == raw
    assert _read_struct(bytes(encoded), 0)[0] == footer


def test_thrift_long_lists_and_negative_ints():
    fields = [(1, 6, -5), (2, 9, (5, [i - 9 for i in range(40)])), (20, 8, b"x" * 300), (21, 1, True)]
    out = bytearray()
    _write_struct(out, fields)
    assert _read_struct(bytes(out), 0)[0] == fields


def _reversed(table: pa.Table) -> pa.Table:
    return table.take(pa.array(range(table.num_rows - 1, -1, -1)))


WRONG_FILES = {  # what a footer bug could produce: (source rows, label rows) as written
    "labels_out_of_order": lambda source, labels: (source, _reversed(labels)),
    "text_chunks_misplaced": lambda source, labels: (_reversed(source), labels),
}


@pytest.mark.parametrize("wrong", list(WRONG_FILES.values()), ids=list(WRONG_FILES))
def test_a_splice_that_reads_back_wrong_is_discarded(tmp_path, monkeypatch, wrong):
    """The read-back check stands between a footer bug and a corrupt shard: a splice whose file does not
    read back as source + labels returns False and leaves no file (the caller then re-encodes)."""
    source = tmp_path / "in.parquet"
    _shard_writer(source_table(), source)
    target = tmp_path / "spliced.parquet"

    def wrong_splice(src, labels, out, head):
        rows, label_rows = wrong(pq.read_table(src), labels)
        schema = pa.schema(list(FILTER_SCHEMA) + list(labels.schema))
        pq.write_table(pa.Table.from_arrays([*rows.columns, *label_rows.columns], schema=schema), out)
        return True

    monkeypatch.setattr(vote_splice, "_splice", wrong_splice)
    assert not splice_shard(source, label_table(), target)
    assert not target.exists()


def test_a_shard_with_gold_answers_is_spliced_too(tmp_path):
    """A filter output of a set with golds (``gold``, ``dataset_verdict``) gets its labels and
    ``gold_reward`` by the same copy of column chunks, and reads as the re-encoded file."""
    from offcurate.curate.vote_shards import Layout

    layout = Layout(gold=True, verdicts=True)
    table = source_table()
    table = table.append_column("gold", pa.array([str(i % 13) for i in range(ROWS)]))
    table = table.append_column(
        "dataset_verdict", pa.array([None if i % 9 == 0 else i % 2 == 0 for i in range(ROWS)])
    )
    source = tmp_path / "in.parquet"
    writer = ShardWriter(source, layout.input)
    writer.write(table)
    writer.close()
    labels = label_table().append_column("gold_reward", pa.array([float(i % 2) for i in range(ROWS)]))
    assert not splice_shard(source, labels, tmp_path / "refused.parquet")  # not the OpenThoughts3 layout
    assert splice_shard(source, labels, tmp_path / "spliced.parquet", layout.input)
    got = pq.read_table(tmp_path / "spliced.parquet")
    assert got.schema.equals(layout.output, check_metadata=False)
    want = table
    for name in labels.column_names:
        want = want.append_column(name, labels[name])
    assert got.equals(want.cast(layout.output))


def test_chunks_from_another_writer_keep_its_name(tmp_path):
    """Readers decide by ``created_by`` which statistics to trust: chunks copied from another writer's
    file are written under that writer's name, not this pyarrow's."""
    source = tmp_path / "in.parquet"
    _shard_writer(source_table(), source)
    footer, start = _file_footer(source)
    writer = "parquet-mr version 1.12.3 (build x)"
    encoded = bytearray()
    _write_struct(encoded, _set(footer, _FILE_CREATED_BY, _BINARY, writer.encode()))
    size = len(encoded).to_bytes(4, "little")
    source.write_bytes(source.read_bytes()[:start] + bytes(encoded) + size + b"PAR1")
    assert splice_shard(source, label_table(), tmp_path / "spliced.parquet")
    assert pq.ParquetFile(tmp_path / "spliced.parquet").metadata.created_by == writer
