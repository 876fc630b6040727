"""The GPU benchmark script runs end to end on CPU (--smoke), and its lean optimizer matches plain AdamW."""

import torch
from bench_helpers import ROOT, run_as_on_gpu_image

from offcurate.train.optim import optimizer_in_backward
from offcurate.train.tiny import build_model

BENCH = ROOT / "bench" / "bench_train.py"


def test_bench_smoke_prints_a_row_per_mode(tmp_path):
    """As on the GPU machine: a plain checkout, offcurate not installed, no polars/datasets/math_verify."""
    out = tmp_path / "BENCHMARKS.md"
    result, env = run_as_on_gpu_image(BENCH, "--smoke", "--append", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert env == {"leaked": [], "offcurate": str(ROOT / "__init__.py")}
    rows = [line for line in out.read_text().splitlines() if line.startswith("| tiny@256")]
    assert [row.split("|")[2].strip() for row in rows] == ["naive", "ours", "ours sel", "lean"]
    assert all("error" not in row and "OOM" not in row for row in rows), rows


def test_optimizer_in_backward_equals_adamw_step():
    torch.manual_seed(0)
    ids = torch.randint(0, 50, (1, 12))
    plain, lean = build_model(50, seed=3), build_model(50, seed=3)
    opt = torch.optim.AdamW(plain.parameters(), lr=1e-2, weight_decay=0.0)
    optimizer_in_backward(lean, lr=1e-2)
    for _ in range(2):
        plain(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        lean(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is None for p in lean.parameters())  # gradients freed as soon as they were used
    for (name, a), (_, b) in zip(plain.named_parameters(), lean.named_parameters()):
        torch.testing.assert_close(a, b, msg=name)
    assert not torch.equal(plain.model.embed_tokens.weight, build_model(50, seed=3).model.embed_tokens.weight)
