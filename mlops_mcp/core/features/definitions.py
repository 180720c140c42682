"""What a feature view is, as data: names, types, a definition, and feature references.

A definition is immutable once registered (a changed schema is a new version), so everything
derived from it (physical column names, the schema hash, the SQL that reads it) can be cached by
version id forever.

Physical columns are ``e0, e1, ...`` for the entity keys and ``f0, f1, ...`` for the features, in
definition order: user column names never reach SQL text (any spelling, reserved words or length is
fine), and the mapping lives in the definition.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from mlops_mcp.core.errors import InvalidInput, listing

FeatureType = Literal["int", "float", "bool", "string"]
KeyType = Literal["int", "string"]
FEATURE_TYPES: tuple[str, ...] = ("int", "float", "bool", "string")
KEY_TYPES: tuple[str, ...] = ("int", "string")

#: a view name: a letter, then letters, digits, '_' or '-' (64 at most); unique ignoring case
VIEW_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
MAX_COLUMN_CHARS = 128
MAX_FEATURES = 500
MAX_ENTITIES = 4
#: the longest TTL accepted (10 years); no TTL at all means "never too old"
MAX_TTL_SECONDS = 3650 * 86400
US = 1_000_000


def check_view_name(name: str, argument: str = "name") -> str:
    if not isinstance(name, str) or not VIEW_NAME_RE.match(name):
        raise InvalidInput(
            f"{str(name)[:80]!r} is not a feature view name; use a letter then letters, digits, '_' or '-' "
            "(at most 64), e.g. 'team_form'",
            argument=argument,
        )
    return name


def check_column_name(name: Any, argument: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_COLUMN_CHARS:
        raise InvalidInput(f"{str(name)[:80]!r} is not a column name (1-{MAX_COLUMN_CHARS} characters)", argument=argument)
    if ":" in name or any(ord(c) < 32 for c in name):
        raise InvalidInput(f"column {name!r} contains ':' or a control character; rename it in the source", argument=argument)
    return name


@dataclass(frozen=True)
class Column:
    """A user column and the physical column that holds it."""

    name: str
    type: str
    physical: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}


@dataclass(frozen=True)
class ViewDefinition:
    """The schema of one view version: what identifies a row, when it happened, what it says."""

    entities: tuple[Column, ...]
    timestamp_column: str
    created_column: str | None
    features: tuple[Column, ...]
    ttl_seconds: int | None  # None: no limit

    @classmethod
    def build(
        cls,
        entities: list[tuple[str, str]],
        timestamp_column: str,
        created_column: str | None,
        features: list[tuple[str, str]],
        ttl_seconds: int | None,
    ) -> "ViewDefinition":
        return cls(
            entities=tuple(Column(n, t, f"e{i}") for i, (n, t) in enumerate(entities)),
            timestamp_column=timestamp_column,
            created_column=created_column,
            features=tuple(Column(n, t, f"f{i}") for i, (n, t) in enumerate(features)),
            ttl_seconds=ttl_seconds,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ViewDefinition":
        return cls.build(
            [(e["name"], e["type"]) for e in data["entities"]],
            data["timestamp_column"],
            data.get("created_column"),
            [(f["name"], f["type"]) for f in data["features"]],
            data.get("ttl_seconds"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "entities": [e.to_json() for e in self.entities],
            "timestamp_column": self.timestamp_column,
            "created_column": self.created_column,
            "features": [f.to_json() for f in self.features],
            "ttl_seconds": self.ttl_seconds,
        }

    def schema_hash(self) -> str:
        """Equal for equal schemas: the key by which re-registering the same definition is a no-op."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()

    @property
    def ttl_us(self) -> int | None:
        return None if self.ttl_seconds is None else int(self.ttl_seconds) * US

    @property
    def key_names(self) -> list[str]:
        return [e.name for e in self.entities]

    def feature(self, name: str, view: str, argument: str = "features") -> Column:
        for f in self.features:
            if f.name == name:
                return f
        raise InvalidInput(
            f"view '{view}' has no feature '{name}'; its features: {listing([f.name for f in self.features], 60)}",
            argument=argument,
        )

    def changes_from(self, other: "ViewDefinition") -> list[str]:
        """What differs from ``other`` (an older version), in words, for the register result."""
        out: list[str] = []
        if [e.to_json() for e in self.entities] != [e.to_json() for e in other.entities]:
            out.append(f"entities {_cols(other.entities)} -> {_cols(self.entities)}")
        if self.timestamp_column != other.timestamp_column:
            out.append(f"timestamp_column {other.timestamp_column!r} -> {self.timestamp_column!r}")
        if self.created_column != other.created_column:
            out.append(f"created_column {other.created_column!r} -> {self.created_column!r}")
        old = {f.name: f.type for f in other.features}
        new = {f.name: f.type for f in self.features}
        added = [n for n in new if n not in old]
        removed = [n for n in old if n not in new]
        retyped = [f"{n} {old[n]} -> {new[n]}" for n in new if n in old and old[n] != new[n]]
        if added:
            out.append(f"features added: {listing(added)}")
        if removed:
            out.append(f"features removed: {listing(removed)}")
        if retyped:
            out.append(f"feature types changed: {listing(retyped)}")
        if self.ttl_seconds != other.ttl_seconds:
            out.append(f"ttl {describe_ttl(other.ttl_seconds)} -> {describe_ttl(self.ttl_seconds)}")
        if not out and [f.name for f in self.features] != [f.name for f in other.features]:
            out.append("feature order changed")
        return out


def _cols(cols: tuple[Column, ...]) -> str:
    return "[" + ", ".join(f"{c.name}:{c.type}" for c in cols) + "]"


def describe_ttl(seconds: int | None) -> str:
    from mlops_mcp.core.times import describe_seconds

    return "none" if seconds is None else describe_seconds(seconds)


def parse_ttl(value: str | float | None) -> int | None:
    """Whole seconds from '36h', '2d', '90m' or a number of seconds; None for no TTL."""
    from mlops_mcp.core.times import parse_duration

    if value is None:
        return None
    seconds = parse_duration(value, "ttl", minimum=1, maximum=MAX_TTL_SECONDS)
    if seconds != int(seconds):
        raise InvalidInput(f"{value!r}: give whole seconds, e.g. '90s', '36h', '2d'", argument="ttl")
    return int(seconds)


def parse_typed_names(items: list[str] | None, argument: str, allowed: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """``["pts", "injured:bool"]`` -> ``[("pts", None), ("injured", "bool")]`` (None: infer the type)."""
    out: list[tuple[str, str | None]] = []
    for item in items or []:
        if not isinstance(item, str):
            raise InvalidInput(f"{item!r} is not a column name", argument=argument)
        name, sep, kind = item.rpartition(":") if ":" in item else (item, "", "")
        if sep:
            kind = kind.strip().lower()
            if kind not in allowed:
                raise InvalidInput(f"{item!r}: unknown type '{kind}'; accepted: {', '.join(allowed)}", argument=argument)
        out.append((check_column_name(name if sep else item, argument), kind or None))
    names = [n for n, _ in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInput(f"named twice: {listing(twice)}", argument=argument)
    return out


@dataclass(frozen=True)
class FeatureRef:
    """``view:feature`` (or ``view:*`` for every feature of the view)."""

    view: str
    feature: str

    @property
    def text(self) -> str:
        return f"{self.view}:{self.feature}"

    @classmethod
    def parse(cls, text: Any, argument: str = "features") -> "FeatureRef":
        if not isinstance(text, str) or text.count(":") != 1:
            raise InvalidInput(
                f"{str(text)[:80]!r} is not a feature reference; write 'view:feature' (or 'view:*' for all of "
                "a view's features), e.g. 'team_form:pts_avg_5'",
                argument=argument,
            )
        view, feature = (p.strip() for p in text.split(":"))
        check_view_name(view, argument)
        if not feature:
            raise InvalidInput(f"{text!r}: the feature name is empty", argument=argument)
        return cls(view, feature)


def parse_refs(features: Any, argument: str = "features", limit: int = MAX_FEATURES) -> list[FeatureRef]:
    if not isinstance(features, list) or not features:
        raise InvalidInput("give a non-empty list of 'view:feature' references, e.g. ['team_form:pts_avg_5']", argument=argument)
    if len(features) > limit:
        raise InvalidInput(f"{len(features)} references is more than the {limit} accepted", argument=argument)
    refs = [FeatureRef.parse(f, argument) for f in features]
    texts = [r.text for r in refs]
    twice = sorted({t for t in texts if texts.count(t) > 1})
    if twice:
        raise InvalidInput(f"named twice: {listing(twice)}", argument=argument)
    return refs
