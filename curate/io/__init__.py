"""The ground floor: Parquet shards, atomic outputs, dataset cards, the spill, reports, errors, ids.

Every other package of offcurate imports from here; this package imports nothing of offcurate but its version.
"""
