"""``offcurate rollout``: sample k responses per question from a causal LM, resumable question by question.

    offcurate rollout -i data/voted -o data/rollouts --model Qwen/Qwen2.5-1.5B-Instruct -k 8
    offcurate stats -i data/voted -o data/stats --base-rollouts data/rollouts     # the blog's Figure 2

The question is the user turn of the model's chat template (as in training). Questions are sorted by
prompt length and cut into fixed batches, so a resumed run forms the same batches with the same seeds.
Each finished batch is written as a part file (temporary name, then rename) into a hidden ``.OUT.partial``
folder next to the output; ``--resume`` skips the batches already there (the sampling options must match).
When every batch is done the parts become ``OUT/train-*.parquet`` (question_id, question, sample_idx,
response, finish_reason, response_tokens: what ``stats --base-rollouts`` and ``eval`` read), atomically.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..curate.io.card import write_card
from ..curate.io.errors import InputError, OutputExistsError
from ..curate.io.output import output_lock, write_errors
from ..curate.io.report import StageReport, progress
from ..curate.io.shards import ShardWriter, atomic_output, check_output, shard_name
from ..train.extra import require_train_extra
from .generate import Completion, Generation, open_generator
from .questions import load_questions

ROLLOUT_SCHEMA = pa.schema(
    [
        ("question_id", pa.string()),
        ("question", pa.string()),
        ("sample_idx", pa.int64()),
        ("response", pa.string()),
        ("finish_reason", pa.string()),
        ("response_tokens", pa.int64()),
    ]
)
SAMPLES_PER_SHARD = 50_000
_THINK = "<think>\n"


@dataclass(frozen=True)
class RolloutOptions:
    """Everything that decides which samples are drawn; a resumed run must repeat it exactly."""

    model: str
    k: int
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    batch_size: int
    questions: str  # digest of the question ids: a resumed run must sample the same questions


def batch_seed(seed: int, first_question_id: str) -> int:
    """Seed of one batch: fixed by the run seed and the batch's first question, whatever was resumed."""
    return (seed * 1_000_003 + zlib.crc32(first_question_id.encode())) % 2**31


def make_batches(prompt_lengths: list[int], k: int, batch_size: int) -> list[list[int]]:
    """Question indices in batches of ``batch_size // k`` prompts (at least one), shortest prompts first,
    so padding stays small; deterministic in the inputs (pure: unit-tested)."""
    per_batch = max(1, batch_size // k)
    order = sorted(range(len(prompt_lengths)), key=lambda i: (prompt_lengths[i], i))
    return [order[i : i + per_batch] for i in range(0, len(order), per_batch)]


def rows_of(
    qids: list[str], questions: list[str], samples: list[list[Completion]], opens_think: bool
) -> dict:
    """Output rows of one batch. When the template's generation prompt already opened ``<think>``, the
    stored response gets it back, so a sample cut inside its thinking reads as unfinished, not as answer."""
    rows = {name: [] for name in ROLLOUT_SCHEMA.names}
    for qid, question, completions in zip(qids, questions, samples):
        for i, c in enumerate(completions):
            rows["question_id"].append(qid)
            rows["question"].append(question)
            rows["sample_idx"].append(i)
            rows["response"].append(_THINK + c.text if opens_think else c.text)
            rows["finish_reason"].append(c.finish_reason)
            rows["response_tokens"].append(c.tokens)
    return rows


class Parts:
    """The hidden folder of finished batches: what is done, adding a batch atomically, the options."""

    def __init__(self, output: Path, options: RolloutOptions, resume: bool, overwrite: bool):
        self.folder = output.parent / f".{output.name}.partial"
        record = self.folder / "rollout.json"
        if self.folder.exists() and not resume:
            if not overwrite:
                raise OutputExistsError(
                    f"{self.folder}: an unfinished rollout is there (pass --resume to continue it, "
                    "or --overwrite to start over)"
                )
            shutil.rmtree(self.folder)
        if resume and record.is_file():
            saved = json.loads(record.read_text())
            changed = [k for k, v in asdict(options).items() if saved.get(k) != v]
            if changed:
                raise InputError(
                    f"--resume: {', '.join(changed)} differ from the unfinished run in {self.folder} "
                    f"({', '.join(f'{k}={saved.get(k)!r}' for k in changed)}); samples would not match"
                )
        self.folder.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(asdict(options), indent=2))

    def done(self) -> set[int]:
        return {int(p.stem.split("-")[1]) for p in self.folder.glob("batch-*.parquet")}

    def write(self, batch_no: int, rows: dict) -> None:
        path = self.folder / f"batch-{batch_no:06d}.parquet"
        tmp = path.with_suffix(".tmp")
        pq.write_table(pa.Table.from_pydict(rows, ROLLOUT_SCHEMA), tmp, compression="zstd")
        tmp.rename(path)

    def finish(self, output: Path, overwrite: bool) -> tuple[int, dict[str, int]]:
        """Stream the parts, in batch order, into output shards (atomically), then drop the hidden folder.

        One part is in memory at a time, so a rollout of any size fits; readers sort by question and
        sample themselves (``rollout.reader``), so no global sort is needed."""
        parts = sorted(self.folder.glob("batch-*.parquet"))
        rows = sum(pq.ParquetFile(part).metadata.num_rows for part in parts)
        count = max(1, -(-rows // SAMPLES_PER_SHARD))
        reasons: Counter = Counter()
        with atomic_output(output, overwrite) as tmp:
            writers = [ShardWriter(tmp / shard_name(i, count), ROLLOUT_SCHEMA) for i in range(count)]
            written = 0
            for part in parts:
                table = pq.read_table(part)
                reasons.update(table.column("finish_reason").to_pylist())
                while table.num_rows:
                    room = SAMPLES_PER_SHARD - writers[written // SAMPLES_PER_SHARD].rows
                    writers[written // SAMPLES_PER_SHARD].write(table.slice(0, room))
                    written += min(room, table.num_rows)
                    table = table.slice(room)
            for writer in writers:
                writer.close()
            shutil.copy(self.folder / "rollout.json", tmp / "rollout.json")
            write_card(
                tmp,
                "Model rollouts (offcurate rollout)",
                ROLLOUT_CARD,
                {"default": ("*.parquet", ROLLOUT_SCHEMA)},
            )
        shutil.rmtree(self.folder)
        return rows, dict(reasons)


def run_rollout(
    input_dir: Path,
    output: Path,
    generation: Generation,
    select: str = "ok",
    limit: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> StageReport:
    """``offcurate rollout``: the selected questions of ``input_dir`` (see ``rollout_questions``)."""
    check_output(output, overwrite, (input_dir,))
    questions = load_questions(input_dir, select, limit)
    return rollout_questions(questions, output, generation, resume=resume, overwrite=overwrite)


def rollout_questions(
    questions: pl.DataFrame,
    output: Path,
    generation: Generation,
    resume: bool = False,
    overwrite: bool = False,
) -> StageReport:
    """k samples for each distinct question of ``questions`` (columns question_id, question) into
    ``output``; ``eval --model`` calls this with the benchmarks' problems."""
    require_train_extra("sampling a model (rollout, eval --model)")
    output = Path(output)
    check_output(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    with write_errors(output), output_lock(output):  # one writer of the output and its .partial at a time
        return _sample(questions, output, generation, resume, overwrite)


def _sample(
    questions: pl.DataFrame, output: Path, generation: Generation, resume: bool, overwrite: bool
) -> StageReport:
    from ..train.data import ChatEncoder
    from ..train.model import load_tokenizer
    from ..train.tiny import TINY_MODEL, resolve_model

    report = StageReport("rollout", output=str(output))
    questions = (
        questions.select("question_id", "question").unique("question_id", keep="first").sort("question_id")
    )
    qids, texts = questions["question_id"].to_list(), questions["question"].to_list()
    digest = hashlib.sha256("\n".join(qids).encode()).hexdigest()[:16]
    g, sampling, seed = generation, generation.sampling, generation.seed
    options = RolloutOptions(
        g.model,
        sampling.k,
        sampling.max_new_tokens,
        sampling.temperature,
        sampling.top_p,
        seed,
        g.batch_size,
        digest,
    )
    parts = Parts(output, options, resume, overwrite)
    source = resolve_model(g.model, parts.folder / TINY_MODEL, seed=seed)
    encoder = ChatEncoder(load_tokenizer(source))
    prompts = [encoder.prompt_text(q) for q in texts]
    lengths = [len(ids) for ids in encoder.tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    batches = make_batches(lengths, sampling.k, g.batch_size)
    done = parts.done()
    todo = [b for b in range(len(batches)) if b not in done]

    generated, started = 0, time.perf_counter()
    if todo:
        generator = open_generator(source, g.backend, g.device, g.dtype, tokenizer=encoder.tokenizer)
        with progress() as bar:
            task = bar.add_task("rollout: questions", total=len(qids))
            bar.advance(task, sum(len(batches[b]) for b in done))
            for b in todo:
                idx = batches[b]
                samples = generator.generate(
                    [prompts[i] for i in idx], sampling, batch_seed(seed, qids[idx[0]])
                )
                generated += sum(c.tokens for cs in samples for c in cs)
                parts.write(
                    b,
                    rows_of(
                        [qids[i] for i in idx], [texts[i] for i in idx], samples, encoder.prompt_opens_think
                    ),
                )
                rate = generated / (time.perf_counter() - started)
                bar.update(task, advance=len(idx), description=f"rollout: {rate:,.0f} tok/s")
    seconds = time.perf_counter() - started
    samples_written, reasons = parts.finish(output, overwrite)
    report.counts.update(
        {
            "model": g.model,
            "questions": len(qids),
            "questions resumed (already sampled)": sum(len(batches[b]) for b in done),
            "samples": samples_written,
            "finished (stop token)": reasons.get("stop", 0),
            "cut at --max-new-tokens": reasons.get("length", 0),
            "generated tokens (this run)": generated,
            "generated tokens/s": generated / seconds if todo and seconds > 0 else 0.0,
        }
    )
    return report.finish()


ROLLOUT_CARD = """
k samples per question from one model (see `rollout.json` for the model and sampling options). Columns:
`question_id` (the id `offcurate filter` gives the question), `question`, `sample_idx` (0..k-1), `response`
(the generated assistant turn; `<think>` restored when the chat template opened it), `finish_reason`
(`stop`: the model ended its turn; `length`: cut at `--max-new-tokens`), `response_tokens`.
`offcurate stats --base-rollouts` scores these against the majority answers (the blog's Figure 2).
"""
