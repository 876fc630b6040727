"""``python -m offcurate``: the same command as ``offcurate``, for launchers that run a module.

torchrun --nproc-per-node 8 -m offcurate train -i data/voted -o runs/r1 --model Qwen/Qwen2.5-7B-Instruct
"""

from .cli import main

main()
