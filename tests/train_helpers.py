"""Hand-built ``offcurate vote`` outputs for the train tests (imported as ``train_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TRAJECTORY_SCHEMA = pa.schema(
    [
        ("question_id", pa.string()),
        ("sample_idx", pa.int64()),
        ("question", pa.string()),
        ("response", pa.string()),
        ("source", pa.string()),
        ("difficulty", pa.int64()),
        ("finished", pa.bool_()),
        ("answer", pa.string()),
        ("cluster", pa.int64()),
        ("reward", pa.float64()),
    ]
)
QUESTION_SCHEMA = pa.schema(
    [("question_id", pa.string()), ("status", pa.string()), ("all_positive", pa.bool_())]
)


def trace(answer: str, thinking: str = "Let me add the numbers step by step.") -> str:
    return f"<think>\n{thinking}\n</think>\n\nSo the answer is $\\boxed{{{answer}}}$."


def default_questions() -> list[dict]:
    """Three ok questions (3/4 right, all right, 2/4 right), a tie and an answerless one."""
    return [
        {"id": "q-mixed", "q": "What is 2+3?", "answers": ["5", "5", "6", "5"], "status": "ok"},
        {"id": "q-allpos", "q": "What is 10-4?", "answers": ["6", "6", "6", "6"], "status": "ok"},
        {"id": "q-half", "q": "What is 3*3?", "answers": ["9", "8", "8", "6"], "status": "ok"},
        {"id": "q-tie", "q": "What is 7/2?", "answers": ["3.5", "3", "3.5", "3"], "status": "tie"},
        {"id": "q-none", "q": "Is it odd?", "answers": [None] * 4, "status": "no_answer"},
    ]


def _thinking(item: dict, i: int) -> str:
    thinking = item.get("thinking", "Let me add the numbers step by step.")
    return thinking[i] if isinstance(thinking, list) else thinking


def _reward(answers: list, status: str, i: int, majority: dict[str, str]) -> float | None:
    if status != "ok":
        return None
    return 1.0 if answers[i] == majority else 0.0


def write_voted(folder: Path, questions: list[dict] | None = None, n_shards: int = 2) -> Path:
    """Write trajectories/ (rows of a question spread over ``n_shards`` shards) and questions/."""
    questions = default_questions() if questions is None else questions
    rows: list[list[dict]] = [[] for _ in range(n_shards)]
    qrows = []
    k = 0
    for item in questions:
        answers = item["answers"]
        counted = [a for a in answers if a is not None]
        majority = max(set(counted), key=counted.count) if counted else None
        rewards = [_reward(answers, item["status"], i, majority) for i in range(len(answers))]
        for i, answer in enumerate(answers):
            rows[k % n_shards].append(
                {
                    "question_id": item["id"],
                    "sample_idx": i,
                    "question": item["q"],
                    "response": (
                        trace(answer, _thinking(item, i)) if answer is not None else "<think>\nI am not sure"
                    ),
                    "source": "test",
                    "difficulty": 3,
                    "finished": answer is not None,
                    "answer": answer,
                    "cluster": None,
                    "reward": rewards[i],
                }
            )
            k += 1
        qrows.append(
            {
                "question_id": item["id"],
                "status": item["status"],
                "all_positive": item["status"] == "ok" and all(r > 0 for r in rewards),
            }
        )
    (folder / "trajectories").mkdir(parents=True, exist_ok=True)
    (folder / "questions").mkdir(parents=True, exist_ok=True)
    for s, shard in enumerate(rows):
        table = pa.Table.from_pylist(shard, TRAJECTORY_SCHEMA)
        pq.write_table(table, folder / "trajectories" / f"train-{s:05d}-of-{n_shards:05d}.parquet")
    pq.write_table(
        pa.Table.from_pylist(qrows, QUESTION_SCHEMA), folder / "questions" / "train-00000-of-00001.parquet"
    )
    return folder
