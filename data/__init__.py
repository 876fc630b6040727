"""The embedded OpenThoughts3-shaped sample (``sample/``) and the script that regenerates it."""

from pathlib import Path

SAMPLE_DIR = Path(__file__).parent / "sample"
