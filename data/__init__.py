"""The embedded samples and the scripts that regenerate them.

``sample/``: OpenThoughts3-shaped (``make_sample.py``); ``sample_openr1/``: OpenR1-Math-220k-shaped, with
gold answers and the set's own per-trace verdicts (``make_gold_sample.py``).
"""

from pathlib import Path

SAMPLE_DIR = Path(__file__).parent / "sample"
GOLD_SAMPLE_DIR = Path(__file__).parent / "sample_openr1"
SAMPLES = {"openthoughts3": SAMPLE_DIR, "openr1-math": GOLD_SAMPLE_DIR}  # --format -> embedded sample
