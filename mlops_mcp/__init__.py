"""mlops-mcp: run the whole life of a machine-learning model from an MCP client.

The package is layered: ``server`` (MCP wiring, command line) -> ``tools`` / ``resources``
(thin MCP adapters) -> ``core`` (the engine, no MCP import, usable as a library).
"""

__version__ = "0.1.0"
