"""How callers name models: one :class:`ModelRef` type and one meaning of a bare name everywhere.

``name`` names the model; where a single version is needed it means the version its ``champion``
alias points at now (and while a live A/B test runs, ``predict`` splits a bare name between the
arms). ``name@alias`` is the version that alias points at, ``name/3`` (or ``name/v3``,
``models:/name/3``) version 3.
"""

import re
from dataclasses import dataclass

from mlops_mcp.core.errors import InvalidInput
from mlops_mcp.core.limits import MAX_ID

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
ALIAS_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
DEFAULT_ALIAS = "champion"


@dataclass(frozen=True)
class ModelRef:
    """``name`` (its champion), ``name@alias`` or ``name/version``; ``models:/`` URIs work too."""

    name: str
    version: int | None = None
    alias: str | None = None
    #: True for a plain name: the caller left the choice to the server (experiments may route it)
    default: bool = False

    @classmethod
    def parse(cls, text: str, argument: str = "model", default_alias: str | None = DEFAULT_ALIAS) -> "ModelRef":
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("give a registered model name, e.g. 'nba-win', 'nba-win@challenger' or 'nba-win/3'", argument=argument)
        raw = text.strip()
        if raw.startswith("models:/"):
            raw = raw[len("models:/") :]
        name, version, alias = raw, None, None
        if "@" in raw:
            name, alias = raw.split("@", 1)
            check_alias(alias, argument)
        elif "/" in raw:
            name, v = raw.rsplit("/", 1)
            v = v[1:] if v[:1] in ("v", "V") else v
            if not v.isdigit() or not 1 <= int(v) <= MAX_ID:
                raise InvalidInput(f"'{text[:80]}': the part after '/' must be a version number from 1 to {MAX_ID} (e.g. 'nba-win/3')", argument=argument)
            version = int(v)
        check_name(name, argument)
        if version is None and alias is None:
            return cls(name, None, default_alias, default=True)
        return cls(name, version, alias)

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def check_name(name: str, argument: str = "model") -> str:
    if not NAME_RE.match(name or ""):
        raise InvalidInput(
            f"'{str(name)[:80]}' is not a valid model name: use letters, digits, '-', '_' or '.', up to 128 characters",
            argument=argument,
        )
    return name


def check_alias(alias: str, argument: str = "alias") -> str:
    if not ALIAS_RE.match(alias or "") or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise InvalidInput(
            f"'{str(alias)[:80]}' is not a valid alias: start with a letter, then letters, digits, '_' or '-' "
            "('latest' and 'v<number>' are reserved by MLflow); e.g. champion, challenger, shadow",
            argument=argument,
        )
    return alias



def check_version(version: int, argument: str = "version") -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_ID:
        raise InvalidInput(f"must be a version number from 1 to {MAX_ID}; got {str(version)[:30]}", argument=argument)
    return version
