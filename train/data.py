"""Lazy access to the ``vote`` output: an index of the groups, row-group reads, chat-template tokenisation.

    from offcurate.train.data import open_voted, RowReader
    voted = open_voted(Path("runs/demo/voted"))        # one pass over question_id/sample_idx/reward only

Rows of one question may sit in different shards, and the text (tens of KB a trace) must not be loaded at
once. So a first pass reads only the small columns and remembers where every trace lives (shard, row group,
row); a training step then reads just the row groups holding its questions (``RowReader``, with a small
LRU cache). Questions whose reward is null (vote status tie / no_answer) are skipped and counted by status.

``reward="gold"`` (``train --reward gold``) reads ``gold_reward`` instead, the score against the dataset's
gold answer that ``vote`` writes on a set that has one: every question with a readable gold trains, tied
votes included, and the questions without one are skipped and counted.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from ..curate.io.errors import InputError
from ..curate.io.shards import (
    check_columns,
    check_utf8,
    is_float,
    is_integer,
    is_string,
    list_shards,
    open_shard,
)

REQUIRED = {
    "question_id": ("string", is_string),
    "sample_idx": ("int64", is_integer),
    "question": ("string", is_string),
    "response": ("string", is_string),
    "reward": ("float64 (nullable)", is_float),
}
if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

INDEX_COLUMNS = ["question_id", "sample_idx", "reward"]
TEXT_COLUMNS = ["question", "response"]
REWARD_COLUMNS = {"vote": "reward", "gold": "gold_reward"}  # --reward -> the column its advantages use


@dataclass(frozen=True)
class RowRef:
    """Where one trace lives: shard number, row group, row inside the row group."""

    shard: int
    row_group: int
    row: int


@dataclass
class Group:
    """One question's traces (sorted by sample_idx) and their rewards."""

    question_id: str
    refs: list[RowRef] = field(default_factory=list)
    sample_idx: list[int] = field(default_factory=list)
    rewards: list[float | None] = field(default_factory=list)


@dataclass
class VotedIndex:
    """The trainable groups in file order, what was skipped and why, and a fingerprint of the input."""

    shards: list[Path]
    groups: list[Group]
    skipped: Counter
    n_rows: int
    fingerprint: str


def resolve_input(path: Path) -> tuple[Path, Path | None]:
    """Accept the voted folder or its trajectories/ subfolder; return (trajectories, questions or None)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if (path / "trajectories").is_dir():
        questions = path / "questions"
        return path / "trajectories", questions if questions.is_dir() else None
    if path.name == "trajectories" and (path.parent / "questions").is_dir():
        return path, path.parent / "questions"
    return path, None


def _question_status(questions: Path | None) -> dict[str, str]:
    if questions is None:
        return {}
    status: dict[str, str] = {}
    for shard in list_shards(questions):
        pf = open_shard(shard)
        if pf.schema_arrow.get_field_index("status") < 0:
            continue
        table = pf.read(columns=["question_id", "status"])
        status.update(zip(table.column("question_id").to_pylist(), table.column("status").to_pylist()))
    return status


def open_voted(path: Path, reward: str = "vote") -> VotedIndex:
    """Index the trajectories (small columns only) and keep the questions whose every reward is set;
    ``reward``: ``vote`` (majority-vote rewards) or ``gold`` (rewards against the dataset's gold)."""
    if reward not in REWARD_COLUMNS:
        raise InputError(f"--reward must be one of {', '.join(REWARD_COLUMNS)}, got {reward!r}")
    column = REWARD_COLUMNS[reward]
    trajectories, questions = resolve_input(path)
    shards = list_shards(trajectories)
    by_question: dict[str, Group] = {}
    digest = hashlib.sha256()
    n_rows = 0
    for s, shard in enumerate(shards):
        pf = open_shard(shard)
        if column not in pf.schema_arrow.names and reward == "gold":
            raise InputError(
                f"{shard}: --reward gold needs a 'gold_reward' column: vote a set with gold answers "
                "(filter --format openr1-math, ... or --format columns --gold-col)"
            )
        check_columns(shard, pf.schema_arrow, {**REQUIRED, column: ("float64 (nullable)", is_float)})
        digest.update(f"{shard.relative_to(trajectories)}:{pf.metadata.num_rows};".encode())
        first_row = 0
        for rg in range(pf.num_row_groups):
            try:
                table = pf.read_row_group(rg, columns=[*INDEX_COLUMNS[:2], column])
            except (pa.ArrowException, OSError) as err:
                raise InputError(f"{shard}: corrupt Parquet data ({err})") from None
            check_utf8(shard, table, first_row)
            first_row += table.num_rows
            qids = table.column("question_id").to_pylist()
            sidx = table.column("sample_idx").to_pylist()
            rewards = table.column(column).cast(pa.float64()).to_pylist()
            for row, (qid, si, r) in enumerate(zip(qids, sidx, rewards)):
                group = by_question.get(qid)
                if group is None:
                    group = by_question[qid] = Group(qid)
                group.refs.append(RowRef(s, rg, row))
                group.sample_idx.append(si)
                group.rewards.append(r)
            n_rows += len(qids)
    if n_rows == 0:
        raise InputError(f"{trajectories}: the trajectory shards hold no rows")
    status = _question_status(questions)
    groups, skipped = [], Counter()
    for group in by_question.values():
        if any(r is None for r in group.rewards):
            if reward == "gold":
                skipped["question without a readable gold (null gold_reward)"] += 1
            else:
                skipped[f"question status {status.get(group.question_id, 'not ok')} (null reward)"] += 1
            continue
        order = sorted(range(len(group.refs)), key=lambda i: group.sample_idx[i])
        group.refs = [group.refs[i] for i in order]
        group.sample_idx = [group.sample_idx[i] for i in order]
        group.rewards = [float(group.rewards[i]) for i in order]
        groups.append(group)
    if not groups:
        what = "a readable gold" if reward == "gold" else "status ok"
        raise InputError(
            f"{trajectories}: no question with {what} (every {column} is null: {dict(skipped)}); "
            "nothing to train on"
        )
    return VotedIndex(shards, groups, skipped, n_rows, digest.hexdigest()[:16])


def question_order(n_groups: int, seed: int, epoch: int, shuffle: bool) -> list[int]:
    """The visiting order of the groups in one epoch: file order, or a shuffle seeded by (seed, epoch)."""
    order = list(range(n_groups))
    if shuffle:
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


class RowReader:
    """Reads (question, response) for a list of RowRefs, one row-group read per group, LRU-cached."""

    def __init__(self, shards: list[Path], cache_bytes: int = 1 << 30):
        self.shards, self.cache_bytes = shards, cache_bytes
        self._files: dict[int, object] = {}
        self._cache: OrderedDict[tuple[int, int], pa.Table] = OrderedDict()
        self.row_group_reads = 0

    def _row_group(self, shard: int, rg: int) -> pa.Table:
        key = (shard, rg)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        pf = self._files.get(shard) or open_shard(self.shards[shard])
        self._files[shard] = pf
        try:
            table = pf.read_row_group(rg, columns=TEXT_COLUMNS)
        except (pa.ArrowException, OSError) as err:
            raise InputError(f"{self.shards[shard]}: corrupt Parquet data ({err})") from None
        first_row = sum(pf.metadata.row_group(i).num_rows for i in range(rg))
        check_utf8(self.shards[shard], table, first_row)  # one line, not a UnicodeDecodeError mid-run
        self.row_group_reads += 1
        self._cache[key] = table
        while len(self._cache) > 1 and sum(t.nbytes for t in self._cache.values()) > self.cache_bytes:
            self._cache.popitem(last=False)
        return table

    def fetch(self, refs: list[RowRef]) -> list[tuple[str, str]]:
        """Texts in the order of ``refs``; refs are grouped by row group so each is read once."""
        wanted: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, ref in enumerate(refs):
            wanted[(ref.shard, ref.row_group)].append(i)
        out: list[tuple[str, str] | None] = [None] * len(refs)
        for (shard, rg), positions in wanted.items():
            table = self._row_group(shard, rg)
            rows = table.take(pa.array([refs[i].row for i in positions]))
            questions = rows.column("question").to_pylist()
            responses = rows.column("response").to_pylist()
            for i, q, r in zip(positions, questions, responses):
                if q is None or r is None:
                    raise InputError(f"{self.shards[shard]}: null question or response in row group {rg}")
                out[i] = (q, r)
        return out  # type: ignore[return-value]


_THINK = "<think>\n"
_PROBE_Q = "PROBE question 7"
_PROBE_R = "<think>\nPROBE thinking\n</think>\n\nPROBE answer \\boxed{7}"


class ChatEncoder:
    """Tokenises (question, response) as the user turn and the assistant turn of the chat template.

    The prompt is the template with the generation prompt; the response is the assistant content plus the
    template's end-of-turn marker (found once with a probe conversation), so the model learns to stop.
    Templates that rewrite assistant content (e.g. strip thinking from history) fall back to
    response + eos; a ``<think>\\n`` that the generation prompt already opens is not repeated.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.tokenizer = tokenizer
        if not getattr(tokenizer, "chat_template", None):
            raise InputError(
                f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template; "
                "use an instruct/chat model or one whose tokenizer_config.json sets chat_template"
            )
        prompt = self.prompt_text(_PROBE_Q)
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": _PROBE_Q}, {"role": "assistant", "content": _PROBE_R}],
            tokenize=False,
        )
        rest = full[len(prompt) :] if full.startswith(prompt) else ""
        if rest.startswith(_PROBE_R):
            self.suffix = rest[len(_PROBE_R) :].rstrip()
        else:
            self.suffix = tokenizer.eos_token or ""
        self.prompt_opens_think = prompt.endswith(_THINK)

    def prompt_text(self, question: str) -> str:
        """The chat-templated user turn plus generation prompt: what training and rollouts condition on."""
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )

    def encode(self, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """(prompt ids, response ids) per pair; prompts are tokenised once per distinct question."""
        tok = self.tokenizer
        prompts: dict[str, list[int]] = {}
        for question, _ in pairs:
            if question not in prompts:
                prompts[question] = tok(self.prompt_text(question), add_special_tokens=False)["input_ids"]
        responses = []
        for _, response in pairs:
            if self.prompt_opens_think and response.startswith(_THINK):
                response = response[len(_THINK) :]
            responses.append(response + self.suffix)
        response_ids = tok(responses, add_special_tokens=False)["input_ids"]
        return [(prompts[q], ids) for (q, _), ids in zip(pairs, response_ids)]
