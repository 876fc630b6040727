"""Curation stages: download -> filter -> vote -> stats, plus sample and pipeline; one module per stage.

The rules that decide a label live in ``curate.answers``, shared I/O in ``curate.io``; stages import
those two (and ``rollout.reader`` for ``stats --base-rollouts``), never the trainer or evaluation.
"""
