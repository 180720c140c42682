"""One settings object for the whole server, read from ``MLOPS_*`` variables and an optional ``.env``.

Defaults are derived from the home folder so that a fresh machine needs no configuration at all:
everything (store, MLflow registry, artifacts, generated data) lives under ``MLOPS_HOME``.
"""

import getpass
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return "unknown"


class Settings(BaseSettings):
    """Server configuration. Every field maps to ``MLOPS_<NAME>``; see ``.env.example``."""

    model_config = SettingsConfigDict(env_prefix="MLOPS_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".mlops"), description="Folder holding the store, MLflow data and data.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the store; default sqlite:///<home>/mlops.db."
    )
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking/registry URI; falls back to MLFLOW_TRACKING_URI, then sqlite:///<home>/mlflow.db.",
    )
    artifact_root: Path | None = Field(
        default=None, description="Where MLflow stores artifacts for new experiments; default <home>/mlartifacts."
    )
    data_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders datasets may be read from (os.pathsep- or comma-separated); default: <home>/data, then the working directory (unless it is / or ~).",
    )
    auth_token: SecretStr | None = Field(
        default=None,
        description="Bearer token required on HTTP when set; empty or whitespace is a configuration error.",
    )
    read_only: bool = Field(default=False, description="Register only read-only tools.")
    read_only_predict: bool = Field(
        default=False,
        description="In read-only mode, still answer REST predictions (POST /v1/models/{name}/predict), "
        "which write to the prediction log; off: the route answers 403.",
    )
    log_level: LogLevel = "INFO"
    actor: str = Field(default_factory=_default_actor, description="Who the audit log names for stdio calls.")
    reference_sample_rows: int = Field(default=50_000, ge=100, description="Rows kept as a version's reference.")
    max_predict_rows: int = Field(default=10_000, ge=1, description="Largest batch `predict` accepts.")
    alias_cache_seconds: float = Field(
        default=1.0, ge=0, le=60,
        description="How long serving reuses an alias lookup (name -> version). A move made by this server "
        "applies on the next call whatever this is; one made elsewhere (another server or replica, mlflow ui) "
        "within this many seconds. 0: ask MLflow on every prediction.",
    )
    trust_pickle: bool = Field(default=False, description="Allow registering .pkl/.joblib models (runs code).")
    # Bounds on the work one train_model call may ask for: the operator's, never the caller's.
    max_n_estimators: int = Field(default=1000, ge=1, description="Largest n_estimators train_model accepts (random_forest, gradient_boosting).")
    max_iter: int = Field(
        default=10_000, ge=1,
        description="Largest max_iter train_model accepts (logistic_regression, ridge; hist_gradient_boosting's number of trees).",
    )
    max_depth: int = Field(default=32, ge=1, description="Largest explicit max_depth of tree models (null, the library's 'until pure', stays allowed).")
    max_train_jobs: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1,
        description="Largest n_jobs train_model accepts (-1 counts as every CPU); default: the number of CPUs.",
    )
    max_train_seconds: float = Field(
        default=3600.0, gt=0, description="A fit running longer is stopped and nothing is registered."
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Extra Host names accepted over HTTP ('*' turns the check off)."
    )
    http_host: str = Field(
        default="127.0.0.1", description="HTTP bind address (an IP address or a host name)."
    )
    http_port: int = Field(default=8765, ge=1, le=65535, description="HTTP port.")
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest HTTP request body, on /mcp and the REST routes alike; "
        "larger ones get 413 before parsing.",
    )
    toolsets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Toolsets to offer (comma-separated, e.g. 'registry,serving,drift'); default: all.",
    )
    retraining_worker: Literal["auto", "off"] = Field(
        default="auto",
        description="auto: on SQLite, retraining jobs run in a worker inside `mlops-mcp serve`; on PostgreSQL "
        "they go to `mlops-mcp worker` processes (procrastinate). off: this process runs no jobs.",
    )
    retraining_stale_seconds: float = Field(
        default=30.0, ge=2, le=3600,
        description="A running retraining job whose runner sent no heartbeat for this long is failed.",
    )
    ray_serve_host: str = Field(
        default="127.0.0.1",
        description="Where Ray Serve's HTTP proxy listens for deployed models (deploy_model); any address "
        "that is not loopback needs MLOPS_AUTH_TOKEN. RAY_ADDRESS (Ray's own variable) picks an existing cluster.",
    )
    ray_serve_port: int = Field(default=8000, ge=1, le=65535, description="Ray Serve's HTTP proxy port.")
    ray_dashboard: bool = Field(default=False, description="Start the Ray dashboard with a local Ray head.")
    ray_num_cpus: int | None = Field(
        default=None, ge=1, le=4096, description="CPUs a local Ray head offers replicas; default: every CPU."
    )
    text_content: Literal["summary", "json"] = Field(
        default="summary",
        description="Text part of tool results: a short summary (default), or the summary plus the full JSON "
        "for hosts that ignore structured content.",
    )

    @field_validator("auth_token", mode="before")
    @classmethod
    def _check_token(cls, value: object) -> object:
        """An empty token must not quietly mean "no authentication" (that fails open): it is an error.
        Surrounding whitespace (a trailing newline from a secret file) is dropped."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(raw, str):
            return value
        token = raw.strip()
        if not token:
            raise ValueError(
                "is set but empty or only whitespace, which would turn authentication off; set a real token "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))') or unset the variable"
            )
        if not (token.isascii() and token.isprintable()):
            raise ValueError("must be printable ASCII (it travels in the HTTP Authorization header)")
        return token

    @field_validator("http_host", mode="before")
    @classmethod
    def _check_host(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        host = value.strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]  # [::1] -> ::1
        if not host:
            raise ValueError("is empty; give an address to bind, e.g. 127.0.0.1 (loopback) or 0.0.0.0 (all)")
        if "/" in host or any(c.isspace() for c in host):
            raise ValueError("is not an address or host name (no scheme, path or spaces), e.g. 127.0.0.1")
        if ":" in host:
            import ipaddress

            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueError(
                    "is not an address or host name; give the port separately (--port or MLOPS_HTTP_PORT)"
                ) from None
        return host

    @field_validator("data_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for chunk in value.split(os.pathsep) for p in chunk.split(",")]
            return [p for p in parts if p]
        return value

    @field_validator("toolsets", mode="before")
    @classmethod
    def _split_toolsets(cls, value: object) -> object:
        if isinstance(value, str):
            return [t.strip().lower() for t in value.split(",") if t.strip()]
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _derive_defaults(self) -> "Settings":
        # Absolute paths: the server may be launched from any working directory by a host.
        self.home = self.home.expanduser().resolve()
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.home / 'mlops.db'}"
        if self.tracking_uri is None:
            self.tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.home / 'mlflow.db'}"
        if self.artifact_root is None:
            self.artifact_root = self.home / "mlartifacts"
        self.artifact_root = self.artifact_root.expanduser().resolve()
        roots = self.data_roots or default_roots(self.home)
        self.data_roots = [Path(r).expanduser().resolve() for r in roots]
        return self

    def public_summary(self) -> dict[str, object]:
        """Settings safe to show a client: no secrets, passwords in URLs masked."""
        return {
            "home": str(self.home),
            "database_url": mask_url(self.database_url or ""),
            "tracking_uri": mask_url(self.tracking_uri or ""),
            "data_roots": [str(p) for p in self.data_roots],
            "data_roots_help": DATA_ROOTS_HELP,
            "read_only": self.read_only,
            "auth_required": self.auth_token is not None,
        }


DATA_ROOTS_HELP = (
    "To read files elsewhere, set MLOPS_DATA_ROOTS (folders separated by ':' or ',') in the server's "
    "environment, e.g. in the host's MCP configuration \"env\" block, and restart the server; "
    "or copy the file into a data root."
)


class SettingsError(ValueError):
    """The configuration cannot be used; the message names each ``MLOPS_`` variable and what to do."""


def load_settings(**overrides: object) -> Settings:
    """``Settings(**overrides)`` for the command line: validation errors become one readable
    ``SettingsError`` naming the variables (never echoing a secret) instead of pydantic's dump."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    secret_types = (SecretStr, SecretStr | None)
    secret = {name for name, field in Settings.model_fields.items() if field.annotation in secret_types}
    problems = []
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        shown = "" if field in secret or "input" not in error else f" (given {error['input']!r})"
        problems.append(f"MLOPS_{field.upper()}{shown}: {message}")
    return "; ".join(problems)


def default_roots(home: Path) -> list[Path]:
    """``<home>/data``, then the working directory, unless that is '/' or the user's home folder:
    hosts often launch stdio servers from there, and it would open every file on the disk."""
    roots = [home / "data"]
    cwd = Path.cwd().resolve()
    if cwd != Path(cwd.anchor) and cwd != Path.home().resolve():
        roots.append(cwd)
    return roots


def mask_url(url: str) -> str:
    """Hide the password part of a ``scheme://user:password@host`` URL."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"
