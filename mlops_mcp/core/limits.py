"""Bounds on what a caller may send, in one place so that schemas, errors and the README agree."""

#: largest id or version number accepted (a 32-bit signed integer: every store column holds it)
MAX_ID = 2**31 - 1
#: the largest magnitude a numeric input may have: models compute in float32 (trees) and overflow
#: beyond it, so larger values are refused as input errors rather than failing inside sklearn
MAX_NUMBER = 3.4e38
#: rows accepted inline (``rows`` instead of a dataset file)
MAX_INLINE_ROWS = 10_000
