"""Bounds on what a caller may send, in one place so that schemas, errors and the README agree."""

#: largest id or version number accepted (a 32-bit signed integer: every store column holds it)
MAX_ID = 2**31 - 1
#: rows accepted inline (``rows`` instead of a dataset file)
MAX_INLINE_ROWS = 10_000
