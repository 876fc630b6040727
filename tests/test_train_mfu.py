"""Model FLOPs against hand-computed values (the numerator of MFU)."""

import pytest

from offcurate.train.mfu import model_flops, utilisation

FLOP_CASES = {
    # 6·N·tokens + 6·L·d·Σ l²: 6·100·8 + 6·2·8·(3² + 5²)
    "full_training": (0, 6 * 100 * 8 + 6 * 2 * 8 * (9 + 25)),
    # 60 of the 100 parameters frozen (LoRA base): 4 per token for them, 6 for the other 40
    "lora_frozen_base": (60, (4 * 60 + 6 * 40) * 8 + 6 * 2 * 8 * (9 + 25)),
}


@pytest.mark.parametrize("n_frozen, expected", list(FLOP_CASES.values()), ids=list(FLOP_CASES))
def test_model_flops(n_frozen, expected):
    assert model_flops(100, 2, 8, [3, 5], n_frozen=n_frozen) == expected


@pytest.mark.parametrize(
    "peak, devices, expected",
    [(4e12, 1, 0.5), (4e12, 2, 0.25), (4e12, 8, 0.0625), (None, 1, None)],
    ids=["one_device", "two_ranks", "eight_ranks", "cpu_no_peak"],
)
def test_utilisation_counts_every_rank(peak, devices, expected):
    """A step of 2e12 FLOPs in 1 s: half of one 4 TFLOP/s device, a quarter of two."""
    assert utilisation(2e12, 1.0, peak, devices) == expected
