"""``offcurate eval``, the top layer: benchmarks with gold answers (``benchmarks``), scoring a model's
responses (``evaluate``), before/after deltas and the radar (``compare``), and the command (``command``).
It uses ``rollout`` to sample and ``curate.answers`` to score.
"""
