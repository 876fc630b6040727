"""Sampling a model: ``offcurate rollout`` (``stage``), its transformers/vLLM backends (``generate``), the
shared sampling options (``options``), the questions it samples (``questions``) and the reader of a
rollout folder (``reader``) that ``stats --base-rollouts`` and ``eval`` score.

torch and transformers are imported only when a model is loaded, never at import time.
"""
