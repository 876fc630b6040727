"""offcurate: teacher traces -> majority-vote labels -> off-policy GRPO.

The repository keeps `cli.py`, `curate/`, `train/` and `data/` at the top (the design card); packaging maps
them under this one import path, so `import offcurate.curate` works and no bare `cli`/`train` module is
installed.
"""

__version__ = "0.1.0"
