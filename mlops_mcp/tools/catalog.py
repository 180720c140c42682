"""The tools one server exposes, installed on its MCPServer through the SDK's public API only.

Why it is lazy: pydantic builds an argument model and two JSON schemas per tool, about 5 ms a
tool, and hosts launch stdio servers on every start. So ``tools/list`` is answered from a schema
cache kept in ``<home>/cache/tool-schemas/``, named by a fingerprint of this package's source and
the ``mcp``/``pydantic`` versions, and a tool is built (``MCPServer.add_tool``) on its first call.
The cache is written by the first start that misses it; a new release of anything simply misses
it once, so no committed file can go stale.

The same middleware turns the SDK's raw argument-validation errors (pydantic's text with a URL)
into the project's form: argument, what was given, what is accepted.
"""

import hashlib
import inspect
import json
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, ListToolsResult, TextContent
from mcp.types import Tool as MCPTool
from pydantic import ValidationError

from mlops_mcp.tools.spec import INJECTED, ToolSpec, bind

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """What the schemas are made of: this package's source, and the libraries that turn it into
    JSON schemas. Any change gives a new cache file (built once, on the first start)."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE_ROOT)).encode())
        digest.update(path.read_bytes())
    digest.update(f"mcp={version('mcp')};pydantic={version('pydantic')}".encode())
    return digest.hexdigest()[:24]


class ToolCatalog:
    """The enabled tools of one server: listed from the cache, built on first call."""

    def __init__(
        self, mcp: MCPServer, specs: Sequence[ToolSpec], audit: Any, cache_dir: Path | None, observe: Any = None
    ) -> None:
        self.mcp = mcp
        self.specs = {s.name: s for s in specs}
        self.audit = audit
        self.observe = observe
        self.cache_file = None if cache_dir is None else cache_dir / f"{fingerprint()}.json"
        self._built: set[str] = set()
        self._schemas: dict[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._arg_models: dict[str, Any] = {}

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    @property
    def built(self) -> set[str]:
        """Tools registered with the SDK so far (built on their first call)."""
        return set(self._built)

    def ensure(self, name: str) -> None:
        """Register ``name`` with the SDK unless done (unknown names are left to the SDK's error)."""
        spec = self.specs.get(name)
        if spec is None or name in self._built:
            return
        with self._lock:
            if name in self._built:
                return
            self.mcp.add_tool(
                bind(spec, self.audit, self.observe),
                name=name,
                title=spec.title,
                description=spec.description,
                annotations=spec.annotations,
                meta=spec.meta,
            )
            self._built.add(name)

    def build_all(self) -> None:
        for name in self.specs:
            self.ensure(name)

    async def listing(self) -> list[MCPTool]:
        schemas = self._schemas if self._schemas is not None else self._load()
        missing = [n for n in self.specs if not _complete(schemas.get(n))]
        if missing:
            for name in missing:
                self.ensure(name)
            built = {t.name: t for t in await self.mcp.list_tools()}
            for name in missing:
                schemas[name] = {
                    "description": self.specs[name].description,
                    "input_schema": compact_schema(built[name].input_schema),
                    "output_schema": compact_schema(built[name].output_schema),
                }
            self._save(schemas)
        self._schemas = schemas
        return [
            MCPTool(
                name=name,
                title=spec.title,
                description=schemas[name]["description"],
                input_schema=schemas[name]["input_schema"],
                output_schema=schemas[name]["output_schema"],
                annotations=spec.annotations,
                _meta=spec.meta,
            )
            for name, spec in self.specs.items()
        ]

    def _load(self) -> dict[str, dict[str, Any]]:
        if self.cache_file is None:
            return {}
        try:
            data = json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            return {}
        # anything but the shape we write (a hand-edited or truncated file) is ignored and rewritten
        if not isinstance(data, dict) or data.get("fingerprint") != fingerprint() or not isinstance(data.get("tools"), dict):
            return {}
        return {k: v for k, v in data["tools"].items() if isinstance(k, str) and isinstance(v, dict)}

    def _save(self, schemas: dict[str, dict[str, Any]]) -> None:
        """Merge into the cache file, atomically (several servers may start at once)."""
        if self.cache_file is None:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            merged = {**self._load(), **schemas}
            fd, tmp = tempfile.mkstemp(prefix=".tools-", dir=self.cache_file.parent)
            with os.fdopen(fd, "w") as fh:
                json.dump({"fingerprint": fingerprint(), "tools": merged}, fh, sort_keys=True)
            os.replace(tmp, self.cache_file)
        except OSError as exc:  # a read-only home only costs start-up time
            log.debug("could not write the tool schema cache: %s", exc)

    # -- argument errors ----------------------------------------------------------------------
    def argument_error(self, name: str, arguments: Any) -> str | None:
        """Our reading of why ``arguments`` do not fit tool ``name`` (None if they do)."""
        spec = self.specs.get(name)
        if spec is None or not isinstance(arguments, dict):
            return None
        model = self._arg_model(spec)
        try:
            model.model_validate(_pre_parse(model, arguments))
        except ValidationError as exc:
            return describe_validation(exc)
        return None

    def unknown_arguments(self, name: str, arguments: Any) -> str | None:
        """Arguments the tool does not take are refused, not silently dropped (a caller that passes
        `version=3` to a tool without one would otherwise get an answer about something else)."""
        spec = self.specs.get(name)
        if spec is None or not isinstance(arguments, dict) or not arguments:
            return None
        accepted = [p for p in inspect.signature(spec.fn).parameters if p not in INJECTED]
        unknown = [k for k in arguments if k not in accepted]
        if not unknown:
            return None
        return (
            f"{', '.join(map(str, unknown[:5]))}: not an argument of {name}; accepted: {', '.join(accepted)}"
        )

    def _arg_model(self, spec: ToolSpec) -> Any:
        model = self._arg_models.get(spec.name)
        if model is None:
            from pydantic import ConfigDict, create_model

            fields: dict[str, Any] = {}
            for param in inspect.signature(spec.fn).parameters.values():
                if param.name in INJECTED:
                    continue
                default = ... if param.default is inspect.Parameter.empty else param.default
                fields[param.name] = (param.annotation, default)
            model = create_model(
                f"{spec.name}_arguments", __config__=ConfigDict(arbitrary_types_allowed=True), **fields
            )
            self._arg_models[spec.name] = model
        return model


def compact_schema(node: Any, in_properties: bool = False) -> Any:
    """The same JSON schema, smaller: pydantic's per-field "title" keywords dropped (they repeat the
    field name) and ``anyOf`` of plain types written as a type list (``["integer", "null"]``).
    tools/list is read by the model on every conversation; this cuts it by about a fifth."""
    if isinstance(node, list):
        return [compact_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if in_properties:  # keys are property names here, values schemas
            out[key] = compact_schema(value)
        elif key == "title" and isinstance(value, str):
            continue
        else:
            out[key] = compact_schema(value, in_properties=key in ("properties", "$defs", "patternProperties"))
    any_of = out.get("anyOf")
    if (
        not in_properties
        and isinstance(any_of, list)
        and all(isinstance(a, dict) and set(a) == {"type"} and isinstance(a["type"], str) for a in any_of)
    ):
        del out["anyOf"]
        out["type"] = [a["type"] for a in any_of]
    return out


def _complete(entry: Any) -> bool:
    return isinstance(entry, dict) and all(
        isinstance(entry.get(k), want) for k, want in (("description", str), ("input_schema", dict), ("output_schema", dict))
    )


class CatalogMiddleware:
    """Answers ``tools/list`` from the catalog, builds a tool before its first call, and rewrites
    argument-validation errors into the project's form."""

    def __init__(self, catalog: ToolCatalog) -> None:
        self.catalog = catalog

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "tools/list":
            return ListToolsResult(tools=await self.catalog.listing())
        if ctx.method != "tools/call":
            return await call_next(ctx)
        params = ctx.params or {}
        name = params.get("name")
        if isinstance(name, str):
            self.catalog.ensure(name)
            unknown = self.catalog.unknown_arguments(name, params.get("arguments"))
            if unknown:
                return CallToolResult(content=[TextContent(type="text", text=f"Error executing tool {name}: {unknown}")], is_error=True)
        result = await call_next(ctx)
        if isinstance(name, str) and _is_validation(result, name):
            message = self.catalog.argument_error(name, params.get("arguments") or {})
            if message is not None:
                return CallToolResult(
                    content=[TextContent(type="text", text=f"Error executing tool {name}: {message}")], is_error=True
                )
        return result


def _is_validation(result: HandlerResult, name: str) -> bool:
    """The SDK's answer to arguments that failed validation (serialized or not)."""
    if isinstance(result, CallToolResult):
        is_error, texts = result.is_error, [getattr(c, "text", "") for c in result.content]
    elif isinstance(result, dict):
        is_error = bool(result.get("isError"))
        texts = [c.get("text", "") for c in result.get("content") or [] if isinstance(c, dict)]
    else:
        return False
    text = " ".join(t for t in texts if isinstance(t, str))
    return is_error and text.startswith(f"Error executing tool {name}: ") and "validation error" in text[:200]


def _pre_parse(model: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    """What the SDK does first: a JSON string given for a non-string argument is parsed."""
    out = dict(arguments)
    for key, value in arguments.items():
        field = model.model_fields.get(key)
        if field is None or not isinstance(value, str) or field.annotation is str:
            continue
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            continue
        if not isinstance(parsed, (str, int, float)):
            out[key] = parsed
    return out


def describe_validation(exc: ValidationError) -> str:
    """'estimator: got 'xgboost'; expected one of ...' for each problem, in one line."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        if err.get("type") == "missing":
            parts.append(f"{loc}: missing; this argument is required")
            continue
        parts.append(f"{loc}: got {_shown(err.get('input'))}; expected {_expected(err)}")
    unique = list(dict.fromkeys(parts))
    more = f" (and {len(unique) - 5} more)" if len(unique) > 5 else ""
    return "; ".join(unique[:5]) + more


_EXPECTED = {
    "too_short": "at least {min_length} item(s)",
    "too_long": "at most {max_length} items",
    "string_too_short": "at least {min_length} character(s)",
    "string_too_long": "at most {max_length} characters",
    "string_pattern_mismatch": "text matching {pattern}",
    "greater_than_equal": "a number >= {ge}",
    "greater_than": "a number > {gt}",
    "less_than_equal": "a number <= {le}",
    "less_than": "a number < {lt}",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text",
    "dict_type": "an object",
    "list_type": "a list",
    "finite_number": "a finite number",
}


def _expected(err: Any) -> str:
    template = _EXPECTED.get(err.get("type", ""))
    if template is not None:
        try:
            return template.format(**(err.get("ctx") or {}))
        except (KeyError, IndexError):
            pass
    msg = str(err.get("msg", "")).removeprefix("Input should be ").removeprefix("Value error, ")
    return ("one of " + msg) if err.get("type") == "literal_error" else msg.replace("a valid ", "a ")


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return f"an object with keys {', '.join(map(str, list(value)[:5]))}" if value else "an empty object"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
