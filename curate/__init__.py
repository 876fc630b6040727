"""Curation stages: download -> filter -> vote -> stats. Pure math lives in small modules; I/O at the edges."""
