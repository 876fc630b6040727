"""trace_logprob: the log-prob of each teacher trace under a model, per kind, and its command line.

python -m pytest tests/test_trace_logprob.py -q
"""

from __future__ import annotations

import json
import math

import pyarrow.parquet as pq
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402
from train_helpers import write_voted  # noqa: E402

from offcurate.train.data import ChatEncoder, RowReader, open_voted  # noqa: E402
from offcurate.train.model import load_tokenizer  # noqa: E402
from offcurate.train.tiny import write_tiny_model  # noqa: E402
from offcurate.train.trace_logprob import main, summarise, trace_logprobs  # noqa: E402


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("trace_logprob")
    return write_voted(root / "voted"), write_tiny_model(root / "tiny", seed=3)


def test_summarise_weights_every_token_alike():
    rows = [
        {"all_positive": True, "reward": 1.0, "tokens": 10, "logp": -5.0, "prob": 6.0, "low": 1},
        {"all_positive": True, "reward": 1.0, "tokens": 30, "logp": -3.0, "prob": 24.0, "low": 3},
        {"all_positive": False, "reward": 1.0, "tokens": 4, "logp": -2.0, "prob": 2.0, "low": 0},
        {"all_positive": False, "reward": 0.0, "tokens": 5, "logp": -10.0, "prob": 1.0, "low": 5},
    ]
    assert summarise(rows) == {
        "all-positive": {"traces": 2, "tokens": 40, "logp_per_token": -0.2, "prob_per_token": 0.75,
                         "low_prob_share": 0.1},
        "mixed-right": {"traces": 1, "tokens": 4, "logp_per_token": -0.5, "prob_per_token": 0.5,
                        "low_prob_share": 0.0},
        "mixed-wrong": {"traces": 1, "tokens": 5, "logp_per_token": -2.0, "prob_per_token": 0.2,
                        "low_prob_share": 1.0},
    }  # fmt: skip


def test_each_trace_scores_as_the_models_own_forward_pass(inputs):
    """Packed several traces to a micro-batch, each trace's sum of log π equals one plain forward of it
    alone; only the ok questions (not the tie, not the answerless one) are scored."""
    from transformers import AutoModelForCausalLM

    voted, model_dir = inputs
    rows = trace_logprobs(model_dir, voted, device="cpu")
    assert {r["question_id"] for r in rows} == {"q-mixed", "q-allpos", "q-half"}
    assert {r["question_id"] for r in rows if r["all_positive"]} == {"q-allpos"}

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    encoder = ChatEncoder(load_tokenizer(model_dir))
    index = open_voted(voted)
    reader = RowReader(index.shards)
    texts = {
        (g.question_id, si): pair
        for g in index.groups
        for si, pair in zip(g.sample_idx, encoder.encode(reader.fetch(g.refs)))
    }
    for row in rows:
        prompt, response = texts[row["question_id"], row["sample_idx"]]
        ids = torch.tensor([prompt + response])
        with torch.no_grad():
            logp = model(ids).logits[0, :-1].float().log_softmax(-1)
        own = logp[len(prompt) - 1 :].gather(1, ids[0, len(prompt) :, None]).squeeze(1)
        assert row["tokens"] == len(response)
        assert row["logp"] == pytest.approx(float(own.sum()), abs=1e-3)
        assert row["low"] == int((own < math.log(0.1)).sum())


def test_command_writes_a_folder_and_keeps_an_existing_one(inputs, tmp_path, capsys):
    voted, model_dir = inputs
    out = tmp_path / "scored"
    main([str(voted), str(model_dir), "--device", "cpu", "-o", str(out)])
    printed = json.loads(capsys.readouterr().out)
    summary = pq.read_table(out / "summary.parquet").to_pylist()
    assert [s["kind"] for s in summary] == ["all-positive", "mixed-right", "mixed-wrong"]
    assert summary[0]["traces"] == printed["all-positive"]["traces"] == 4
    assert pq.read_table(out / "traces.parquet").num_rows == 12
    assert (out / "README.md").is_file()

    with pytest.raises(SystemExit) as refused:
        main([str(voted), str(model_dir), "--device", "cpu", "-o", str(out)])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and err.startswith("error:") and "exists" in err and err.count("\n") == 1
    main([str(voted), str(model_dir), "--device", "cpu", "-o", str(out), "--overwrite"])


@pytest.mark.parametrize("which", ["voted", "model"])
def test_a_missing_input_is_one_line_and_exit_2(inputs, tmp_path, capsys, which):
    voted, model_dir = inputs
    args = [tmp_path / "missing", model_dir] if which == "voted" else [voted, tmp_path / "missing"]
    with pytest.raises(SystemExit) as failed:
        main([*map(str, args), "--device", "cpu", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert failed.value.code == 2 and err.startswith("error:") and err.count("\n") == 1, err
    assert "missing" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, value", [("--questions", "0"), ("--max-len", "-5"), ("--questions", "nan")])
def test_a_bad_count_is_refused_before_any_work(inputs, tmp_path, capsys, option, value):
    voted, model_dir = inputs
    with pytest.raises(SystemExit) as failed:
        main([str(voted), str(model_dir), option, value, "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert failed.value.code == 2 and f"argument {option}" in err, err
    assert not (tmp_path / "out").exists()
