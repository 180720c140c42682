"""Confirmation for destructive tools, on every client.

A destructive tool declares ``ok: Annotated[ConfirmOutcome, Resolve(resolver)]`` and a plain
``confirm: bool = False`` argument; its resolver takes the tool's arguments by name and returns
:func:`confirm_or_ask`. The resolver asks the user by elicitation when the client
supports it (the question names exactly what will change); otherwise the explicit ``confirm``
argument decides. Without either the tool describes what it would do and changes nothing.
"""

from collections.abc import Callable
from typing import Any

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, Elicit
from pydantic import BaseModel, Field


class Confirm(BaseModel):
    confirm: bool = Field(description="true to go ahead")


ConfirmOutcome = ElicitationResult[Confirm]


def confirm_or_ask(ctx: Context, confirm: bool, question: Callable[[], str | None]) -> Any:
    """What a tool's resolver returns: go ahead when ``confirm`` is true; otherwise ask by
    elicitation when the client can (``question()`` returns None when nothing would change, and
    then no one is asked); otherwise a refusal that the tool turns into a dry-run answer."""
    if confirm:
        return Confirm(confirm=True)
    caps = ctx.client_capabilities
    if caps is None or caps.elicitation is None:
        return Confirm(confirm=False)
    text = question()
    if text is None:
        return Confirm(confirm=True)
    return Elicit(text, Confirm)


def outcome(ok: Any) -> tuple[bool, str | None]:
    """(go ahead?, why not) from the resolved parameter."""
    if isinstance(ok, AcceptedElicitation):
        return bool(ok.data.confirm), None if ok.data.confirm else "not confirmed"
    if isinstance(ok, Confirm):
        return ok.confirm, None if ok.confirm else "not confirmed"
    action = getattr(ok, "action", "declined")
    return False, f"the user {action}d" if action in ("decline", "cancel") else f"elicitation {action}"
