"""Curation stages: download -> filter -> vote -> stats. Pure math in small modules; I/O at the edges."""
