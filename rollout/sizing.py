"""Which ``--tensor-parallel-size`` for a model at 32K-token samples on 80 GB GPUs: computed, not measured.

    python -m offcurate.rollout.sizing          # the Markdown table README shows (a test keeps them equal)

Per GPU, vLLM gets ``--gpu-memory-utilization`` (0.9) of 80 GiB; from that go the bf16 weights (split
over TP GPUs) and a reserve for activations and CUDA graphs (an assumption: 3 GiB); the rest is KV
cache. A token's KV cache is 2 (K and V) x layers x KV heads x head dim x 2 bytes, the KV heads split
over TP GPUs (at least one per GPU: vLLM replicates them when TP exceeds their number). A full-length
sequence is a 1K-token prompt plus a 32K-token sample. The recommended TP is the smallest that holds
16 full-length sequences per engine (one question's k = 16 samples at once, sharing the prompt's
blocks); the rest of a node's GPUs are more engines (``--data-parallel-size``), which is faster than a
larger TP as long as the batch fits. Shapes are the Qwen2.5 configs.
"""

from __future__ import annotations

GIB = 1 << 30
SHAPES = {  # Qwen2.5-{1.5B,7B,32B}-Instruct config.json
    "1.5B": dict(hidden=1536, intermediate=8960, layers=28, heads=12, kv_heads=2, vocab=151936, tied=True),
    "7B": dict(hidden=3584, intermediate=18944, layers=28, heads=28, kv_heads=4, vocab=152064, tied=False),
    "32B": dict(hidden=5120, intermediate=27648, layers=64, heads=40, kv_heads=8, vocab=152064, tied=False),
}  # fmt: skip
GPU_GIB = 80
UTILIZATION = 0.9
RESERVE_GIB = 3.0
SEQUENCE = 1024 + 32768  # prompt + sample
TARGET_SEQUENCES = 16
TPS = (1, 2, 4, 8)


def parameters(s: dict) -> int:
    """Weights of a Qwen2-style decoder: embeddings (+ untied head), attention with q/k/v biases, SwiGLU."""
    head_dim = s["hidden"] // s["heads"]
    kv = s["kv_heads"] * head_dim
    attention = 2 * s["hidden"] * s["hidden"] + 2 * s["hidden"] * kv + s["hidden"] + 2 * kv
    layer = attention + 3 * s["hidden"] * s["intermediate"] + 2 * s["hidden"]
    embeddings = s["vocab"] * s["hidden"] * (1 if s["tied"] else 2)
    return embeddings + s["layers"] * layer + s["hidden"]


def kv_bytes_per_token(s: dict, tp: int = 1) -> int:
    """bf16 K and V of one token on one GPU of a TP group."""
    head_dim = s["hidden"] // s["heads"]
    return 2 * s["layers"] * max(1, s["kv_heads"] // tp) * head_dim * 2


def fit(s: dict, tp: int) -> dict:
    """Memory per GPU and the full-length sequences an engine of ``tp`` GPUs holds at once."""
    weights = parameters(s) * 2 / tp / GIB
    room = GPU_GIB * UTILIZATION - weights - RESERVE_GIB
    per_sequence = kv_bytes_per_token(s, tp) * SEQUENCE / GIB
    return {"weights": weights, "room": room, "per_sequence": per_sequence,
            "sequences": max(0, int(room // per_sequence))}  # fmt: skip


def recommended_tp(s: dict) -> int:
    return next(tp for tp in TPS if fit(s, tp)["sequences"] >= TARGET_SEQUENCES)


def markdown_table() -> str:
    lines = [
        "| model | TP | bf16 weights per GPU | KV room per GPU | KV per 33K-token sequence per GPU "
        "| full-length sequences per engine | engines per 8-GPU node |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in SHAPES.items():
        best = recommended_tp(s)
        for tp in TPS:
            f = fit(s, tp)
            mark = " **(recommended)**" if tp == best else ""
            lines.append(
                f"| {name} | {tp}{mark} | {f['weights']:.1f} GiB | {max(f['room'], 0):.1f} GiB | "
                f"{f['per_sequence']:.2f} GiB | {f['sequences']} | {8 // tp} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
