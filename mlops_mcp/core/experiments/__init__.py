"""Experiments: the statistics behind A/B tests and shadow comparisons.

The MCP tools (``run_ab_test``, ``get_ab_test``, ``get_shadow_report``, ...) are thin adapters over
:mod:`mlops_mcp.core.experiments.stats`. This package ``__init__`` imports nothing heavy on purpose:
numpy and scipy load only when ``stats`` is first imported, so the server still starts fast.
"""
