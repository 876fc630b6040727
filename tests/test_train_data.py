"""Reading the vote output: skipped statuses, bad input, chat-template tokens, whole questions per step."""

from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from train_helpers import default_questions, write_voted

from offcurate.curate.io.errors import InputError
from offcurate.train.data import ChatEncoder, RowReader, open_voted
from offcurate.train.objective import ObjectiveConfig
from offcurate.train.steps import StepStream
from offcurate.train.tiny import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture()
def voted(tmp_path):
    return write_voted(tmp_path / "voted")


def test_index_keeps_ok_questions_and_counts_the_rest(voted):
    index = open_voted(voted)
    assert [g.question_id for g in index.groups] == ["q-mixed", "q-allpos", "q-half"]
    assert index.skipped == {
        "question status tie (null reward)": 1,
        "question status no_answer (null reward)": 1,
    }
    mixed = index.groups[0]
    assert mixed.sample_idx == [0, 1, 2, 3] and mixed.rewards == [1.0, 1.0, 0.0, 1.0]
    assert {r.shard for r in mixed.refs} == {0, 1}  # the question's rows sit in both shards
    assert open_voted(voted / "trajectories").fingerprint == index.fingerprint


def test_row_reader_returns_texts_in_ref_order(voted):
    index = open_voted(voted)
    refs = list(reversed(index.groups[2].refs))
    texts = RowReader(index.shards).fetch(refs)
    assert [q for q, _ in texts] == ["What is 3*3?"] * 4
    assert [r.split("boxed{")[1][0] for _, r in texts] == ["6", "8", "8", "9"]


def _drop_reward(folder):
    write_voted(folder)
    shard = folder / "trajectories" / "train-00000-of-00002.parquet"
    pq.write_table(pq.read_table(shard).drop(["reward"]), shard)


def _all_ties(folder):
    write_voted(folder, [dict(q, status="tie") for q in default_questions()[:2]])


def _reward_as_string(folder):
    write_voted(folder)
    shard = folder / "trajectories" / "train-00001-of-00002.parquet"
    table = pq.read_table(shard)
    index = table.schema.get_field_index("reward")
    table = table.set_column(index, "reward", pa.array(["1"] * len(table)))
    pq.write_table(table, shard)


BAD = {
    "missing_folder": (None, "no such file or folder"),
    "missing_reward_column": (_drop_reward, "missing column 'reward'"),
    "reward_wrong_type": (_reward_as_string, "column 'reward' has type string"),
    "no_ok_question": (_all_ties, "no question with status ok"),
}


@pytest.mark.parametrize("make, message", list(BAD.values()), ids=list(BAD))
def test_bad_input_names_the_problem(tmp_path, make, message):
    folder = tmp_path / "voted"
    if make:
        make(folder)
    with pytest.raises(InputError, match=message):
        open_voted(folder)


def test_chat_encoder_response_is_the_assistant_turn(tokenizer):
    ((prompt, response),) = ChatEncoder(tokenizer).encode([("What is 2+3?", "<think>\nok\n</think> 5")])
    assert tokenizer.decode(prompt) == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.decode(response) == "<think>\nok\n</think> 5<|im_end|>"


def test_chat_encoder_falls_back_when_template_rewrites_thinking(tokenizer):
    """A QwQ-style template drops thinking from assistant turns and opens <think> in the prompt."""
    qwq = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% if m['role'] == 'assistant' %}{{ m['content'].split('</think>')[-1] }}"
        "{% else %}{{ m['content'] }}"
        "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n"
        "{% endif %}"
    )
    tokenizer = build_tokenizer()
    tokenizer.chat_template = qwq
    ((prompt, response),) = ChatEncoder(tokenizer).encode([("Q?", "<think>\nhm\n</think> 5")])
    assert tokenizer.decode(prompt).endswith("assistant\n<think>\n")
    assert tokenizer.decode(response) == "hm\n</think> 5<|im_end|>"


def _stream(voted, tokenizer, **kwargs):
    index = open_voted(voted)
    args = dict(questions_per_step=2, max_len=10_000, seed=0, shuffle=False)
    args.update(kwargs)
    return StepStream(index, RowReader(index.shards), ChatEncoder(tokenizer), ObjectiveConfig(), **args)


def test_steps_hold_whole_questions_with_exact_weights(voted, tokenizer):
    stream = _stream(voted, tokenizer)
    first, second = stream.next_step(), stream.next_step()
    assert stream.next_step() is None  # one epoch of 3 questions = 2 steps
    assert (first.n_questions, len(first.samples), first.n_all_positive) == (2, 8, 1)
    assert (second.n_questions, len(second.samples)) == (1, 4)
    for step in (first, second):
        for k in range(step.n_questions):
            mine = [s for s in step.samples if s.question == k]
            # Σ over the question's tokens of 1/(Q·G·|o|) = G/(Q·G) = 1/Q
            assert sum(s.weight * s.n_response for s in mine) == pytest.approx(1 / step.n_questions)
    assert first.advantages[4:] == [0.5] * 4  # q-allpos: A = 0 + bias


LONG = "hm " * 200
WITH_LONG_TRACES = [
    {"id": "q-long", "q": "Long?", "answers": ["1", "1", "2", "1"], "status": "ok", "thinking": LONG},
    {"id": "q-a", "q": "A?", "answers": ["1", "2"], "status": "ok"},
    {"id": "q-b", "q": "B?", "answers": ["3", "3"], "status": "ok"},
    {"id": "q-part", "q": "P?", "answers": ["1", "1", "0"], "status": "ok", "thinking": [LONG, LONG, "ok"]},
]


def test_long_traces_dropped_and_counted_question_replaced(tmp_path, tokenizer):
    voted = write_voted(tmp_path / "voted", WITH_LONG_TRACES)
    stream = _stream(voted, tokenizer, max_len=100)
    step = stream.next_step()
    assert step.n_questions == 2 and len(step.samples) == 4
    assert all(len(s.input_ids) <= 100 for s in step.samples)
    assert stream.dropped == {"trajectory longer than max-len": 4, "question with every trace dropped": 1}
    (last,) = stream.next_step().samples  # q-part keeps G = 3: its short trace has weight 1/(1·3·|o|)
    assert last.advantage == pytest.approx(-(2 / 3) / (2**0.5 / 3 + 1e-6))
    assert last.weight * last.n_response == pytest.approx(1 / 3)
    assert stream.dropped["trajectory longer than max-len"] == 6
    assert stream.next_step() is None


def test_run_totals_count_each_dropped_trace_once_over_epochs(tmp_path, tokenizer):
    voted = write_voted(tmp_path / "voted", WITH_LONG_TRACES)
    stream = _stream(voted, tokenizer, max_len=100, epochs=3)
    steps = list(iter(stream.next_step, None))
    assert [s.epoch for s in steps] == [0, 0, 1, 1, 2, 2]
    visits = sum((s.dropped for s in steps), Counter())
    assert visits == {"trajectory longer than max-len": 18, "question with every trace dropped": 3}
    assert stream.dropped == {"trajectory longer than max-len": 6, "question with every trace dropped": 1}


def test_stream_resumes_from_its_state(voted, tokenizer):
    straight = _stream(voted, tokenizer, questions_per_step=1, shuffle=True, epochs=None)
    steps = [straight.next_step() for _ in range(5)]
    again = _stream(voted, tokenizer, questions_per_step=1, shuffle=True, epochs=None)
    again.next_step(), again.next_step()
    state = again.state()
    resumed = _stream(
        voted, tokenizer, questions_per_step=1, shuffle=True, epochs=None, epoch=state["epoch"],
        position=state["position"],
    )  # fmt: skip
    for expected in steps[2:]:
        got = resumed.next_step()
        assert [s.input_ids for s in got.samples] == [s.input_ids for s in expected.samples]
    assert {s.epoch for s in steps} == {0, 1}
