"""The stdio transport with an untouchable protocol stream.

In stdio mode the process's stdout is the protocol channel: one stray line and the client logs
"Failed to parse JSONRPC message". Libraries print there all the time: MLflow's "View run ... at:"
lines when the tracking URI is an HTTP server, scikit-learn's verbose iteration tables, native
code writing to descriptor 1, and subprocess workers (joblib/loky) that inherit descriptor 1.

The SDK diverts descriptor 1 only while its transport runs and puts the wire back when it stops,
so output still buffered in ``sys.stdout`` is flushed onto the wire at exit, and anything printed
before the transport starts or after it stops (``atexit`` handlers, lingering threads) lands there
too. So ``guard_stdio()`` runs first, before settings, logging or any import of the ML stack, and
for the rest of the process's life:

- keeps private duplicates of descriptors 0 and 1 for the protocol, close-on-exec, so that child
  processes never hold the client's pipes open;
- points descriptor 1 and ``sys.stdout`` at stderr (inherited by every child process);
- points descriptor 0 and ``sys.stdin`` at the null device, so that nothing can read a protocol
  message meant for the server.

Nothing is restored at exit: the protocol duplicates are simply closed.
"""

import io
import os
import sys
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, BinaryIO

PROTOCOL_IN, PROTOCOL_OUT = 0, 1


@dataclass(frozen=True)
class ProtocolPipes:
    """The client's pipes, reachable only through these objects once the guard is in place."""

    reader: BinaryIO
    writer: BinaryIO


def _private_duplicate(fd: int) -> int:
    """A close-on-exec duplicate of ``fd`` numbered above the standard range (0-2)."""
    try:
        import fcntl
    except ImportError:  # Windows: os.dup is non-inheritable already
        return os.dup(fd)
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


def _stderr_or_null() -> int:
    """Where stray output goes: stderr, or the null device when the host closed stderr."""
    try:
        os.fstat(2)
        return os.dup(2)
    except OSError:
        return os.open(os.devnull, os.O_WRONLY)


def guard_stdio() -> ProtocolPipes:
    """Take descriptors 0 and 1 for the protocol and send every other reader and writer elsewhere.

    Raises ``OSError`` when the host started the server without a stdin or stdout (then there is
    no protocol channel to serve).
    """
    protocol_out = _private_duplicate(PROTOCOL_OUT)
    protocol_in = _private_duplicate(PROTOCOL_IN)

    diversion = _stderr_or_null()
    os.dup2(diversion, PROTOCOL_OUT)  # dup2 makes descriptor 1 inheritable: children print to stderr
    os.close(diversion)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, PROTOCOL_IN)
    os.close(null)

    # Anything a library wrote into the old sys.stdout buffer now flushes to descriptor 1 (stderr).
    for stream in (sys.stdout, sys.__stdout__):
        with suppress(Exception):
            if stream is not None:
                stream.flush()
    sys.stdout = sys.stderr
    sys.stdin = io.TextIOWrapper(io.FileIO(PROTOCOL_IN, "r", closefd=False), encoding="utf-8")
    return ProtocolPipes(reader=os.fdopen(protocol_in, "rb"), writer=os.fdopen(protocol_out, "wb"))


async def serve_stdio_async(server: Any, pipes: ProtocolPipes) -> None:
    """Serve one MCP session over the guarded pipes (what ``MCPServer.run("stdio")`` does, but
    over the private duplicates instead of descriptors 0 and 1)."""
    import anyio
    from mcp.server.stdio import stdio_server

    stdin = anyio.wrap_file(io.TextIOWrapper(pipes.reader, encoding="utf-8", errors="replace"))
    writer = io.TextIOWrapper(pipes.writer, encoding="utf-8", newline="\n")
    # MCPServer exposes no public way to run over given streams; its run_stdio_async is exactly this.
    lowlevel = server._lowlevel_server
    try:
        async with stdio_server(stdin=stdin, stdout=anyio.wrap_file(writer)) as (read_stream, write_stream):
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
    finally:
        # The client sees end-of-file now, even if worker threads keep the process alive a while.
        with suppress(Exception):
            writer.close()


def serve_stdio(server: Any, pipes: ProtocolPipes) -> None:
    import anyio

    anyio.run(serve_stdio_async, server, pipes)
