"""How a label is decided: the answer rules and the bounded verifier that ``vote``, ``stats
--base-rollouts`` and ``eval`` share.

``extract`` (the final answer of a trace), ``equivalence`` (math-verify with time limits), ``cluster``
(equivalence classes and the majority), ``scoring`` (one answer against a gold), ``pool`` (the worker pool
with a watchdog). Imports only ``curate.io``, never a stage.
"""
