"""``offcurate train``: off-policy GRPO (with the all-positive bias) on the ``vote`` output.

    offcurate train -i runs/demo/voted -o runs/train --model tiny-random --max-steps 20

Modules: ``objective`` (the math, pure), ``data`` (lazy Parquet reading, chat-template tokenisation),
``steps`` (whole questions per optimizer step), ``packing`` (padding-free micro-batches), ``model``
(loading, packed attention, chunked log-probs), ``optim`` (AdamW, warmup + cosine), ``compute`` (one
step's forward/backward/update, what the benchmark times), ``checkpoint`` (HF format + resumable state),
``mfu`` (MFU, peak memory), ``metrics`` (metrics.jsonl, live view), ``config`` (options, resume checks),
``session`` (a run's model, optimizer and data, fresh or resumed), ``engine`` (the loop), ``distributed``
(torchrun, FSDP2, the step split across ranks), ``tracking`` (--report-to), ``lora`` (--lora-r, peft),
``tiny`` (an offline tiny model), ``command`` (the CLI).
torch and transformers are imported only inside these modules, never by ``offcurate.cli`` at import time.
"""
