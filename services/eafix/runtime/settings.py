"""Service settings: `SERVICE_*` environment variables, `*_FILE` variables and mounted secrets.

A setting `x` is read from, in order of precedence:
  1. keyword arguments to `Settings(...)` (the CLI passes the service name this way);
  2. the environment variable `SERVICE_X` (an empty value counts as unset);
  3. the file named by `SERVICE_X_FILE`;
  4. the file `<secrets_dir>/SERVICE_X` (the Helm chart mounts Kubernetes Secrets there).
Peer URLs `SERVICE_<PEER>_URL` of catalogue services are collected into `peers`.
`SERVICE_INSTRUMENTS` (JSON, the chart's `global.instruments`) lays entries over the built-in
instrument table (eafix.instruments); `settings.instruments` is the resulting table.

Anything missing or malformed raises `SettingsError`, whose str() is one line naming the
environment variable, so a pod that cannot start says why in its first log line.
Secret values (SecretStr) never appear in messages, reprs or logs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    AfterValidator,
    Field,
    SecretBytes,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from eafix import services
from eafix.instruments import DEFAULT_INSTRUMENTS, InstrumentError, Instruments

PREFIX = "SERVICE_"
DEFAULT_SECRETS_DIR = Path("/var/run/secrets/eafix")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingsError(Exception):
    """A missing or malformed setting. str() is a single line naming the variable."""


def env_name(setting: str) -> str:
    """`redis_url` -> `SERVICE_REDIS_URL`; `risk-manager_url` -> `SERVICE_RISK_MANAGER_URL`."""
    return PREFIX + setting.upper().replace("-", "_")


def peer_env_name(peer: str) -> str:
    return env_name(f"{peer}_url")


# --- reading raw values ------------------------------------------------------------------------

def _read_file(path: Path, var: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{var}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{var}: {path} is not UTF-8 text") from None
    # `kubectl create secret --from-file` and editors keep the final newline; it is never meant.
    return text.removesuffix("\n").removesuffix("\r")


def read_setting(var: str, environ: Mapping[str, str], secrets_dir: Path) -> tuple[str, str] | None:
    """(value, origin) of `var` from the first source that sets it, or None."""
    if environ.get(var):
        return environ[var], var
    file_var = f"{var}_FILE"
    if environ.get(file_var):
        path = Path(environ[file_var])
        return _read_file(path, file_var), f"file {path} named by {file_var}"
    path = secrets_dir / var
    try:
        present = path.is_file()  # projected Secret volumes are symlinks; is_file follows them
    except OSError as exc:  # e.g. a secrets dir this uid may not traverse: fail loudly
        raise SettingsError(f"{var}: cannot read {path}: {exc.strerror or exc}") from None
    return (_read_file(path, var), f"file {path}") if present else None


class _ServiceEnvSource(PydanticBaseSettingsSource):
    """Reads every field of the settings class (subclasses included) through `read_setting`."""

    def __init__(self, settings_cls: type[BaseSettings], init_kwargs: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._init_kwargs = init_kwargs

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads all fields at once

    def __call__(self) -> dict[str, Any]:
        environ = os.environ
        values: dict[str, Any] = {}
        if environ.get(env_name("secrets_dir")):
            values["secrets_dir"] = environ[env_name("secrets_dir")]
        secrets_dir = Path(self._init_kwargs.get("secrets_dir") or values.get("secrets_dir")
                           or DEFAULT_SECRETS_DIR)
        for field, info in self.settings_cls.model_fields.items():
            if field in ("secrets_dir", "peers"):
                continue
            found = read_setting(env_name(field), environ, secrets_dir)
            if found is None:
                continue
            values[field] = found[0]
            if self.field_is_complex(info):  # lists/maps arrive as JSON (the chart uses toJson)
                try:
                    values[field] = json.loads(found[0])
                except ValueError as exc:
                    raise SettingsError(f"{env_name(field)}: not valid JSON ({exc})") from None
                except RecursionError:
                    raise SettingsError(f"{env_name(field)}: not valid JSON (nested too deeply)") from None
        peers = {}
        for peer in services.NAMES:
            found = read_setting(peer_env_name(peer), environ, secrets_dir)
            if found is not None:
                peers[peer] = found[0]
        values["peers"] = peers
        return values


# --- validation ----------------------------------------------------------------------------------

def _check_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(f"expected a {' or '.join(s + '://' for s in schemes)} URL")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError("the URL has no host")
    parts.port  # noqa: B018 - raises ValueError on a non-numeric or out-of-range port
    return value


def _check_postgres_hosts(value: str) -> None:
    """A PostgreSQL URL may name several hosts (`h1:5432,h2:5432`, libpq's multi-host form, with
    `target_session_attrs=read-write` to find the primary after a failover): each must be host[:port]."""
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("expected a postgresql:// or postgres:// URL")
    for item in parts.netloc.rpartition("@")[2].split(","):
        if not item:
            raise ValueError("the URL has no host")
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port, bad = rest[1:], not host or (rest and not rest.startswith(":"))
        else:
            host, _, port = item.partition(":")
            bad = not host
        if bad or (port and (not port.isdigit() or not 0 < int(port) < 65536)):
            raise ValueError(f"{item!r} is not host[:port]")


def _check_peer_url(value: str) -> str:
    return _check_url(value, ("http", "https")).rstrip("/")


PeerUrl = Annotated[str, AfterValidator(_check_peer_url)]


class Settings(BaseSettings):
    """Runtime settings shared by every service; a service subclasses it for its own."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore", arbitrary_types_allowed=True)

    name: str
    port: int = Field(ge=1, le=65535)  # defaults to the catalogue port of `name`
    log_level: str = "INFO"
    redis_url: str | None = None
    redis_password: SecretStr | None = None
    # Sentinel: the primary is asked of these (host:port, comma-separated) under the master name; the
    # URL then gives only the scheme (rediss = TLS) and the database. See runtime/redis_client.py.
    redis_sentinels: str | None = None
    redis_sentinel_master: str = Field("eafix", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    # Streams per symbol-keyed topic (chart: global.bus.partitions); every service must use the same count.
    bus_partitions: int = Field(1, ge=1, le=64)
    postgres_url: str | None = None
    postgres_user: str | None = None
    postgres_password: SecretStr | None = None
    secrets_dir: Path = DEFAULT_SECRETS_DIR
    peers: dict[str, PeerUrl] = Field(default_factory=dict)
    instruments: Instruments = DEFAULT_INSTRUMENTS

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc, type(self), values)) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        # Only our source: pydantic-settings' own env/secrets sources know neither *_FILE
        # nor a secrets dir that is itself a setting.
        return init_settings, _ServiceEnvSource(settings_cls, init_settings.init_kwargs)

    @classmethod
    def defaults(cls, service: services.ServiceSpec) -> Settings:
        """Catalogue values only, no environment: for `eafix openapi` and documentation."""
        return cls.model_construct(name=service.name, port=service.port)

    @model_validator(mode="before")
    @classmethod
    def _catalogue_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("port") and data.get("name") in services.BY_NAME:
            data = {**data, "port": services.BY_NAME[data["name"]].port}
        return data

    @field_validator("name")
    @classmethod
    def _known_service(cls, value: str) -> str:
        try:
            services.get(value)
        except services.UnknownServiceError as exc:
            raise ValueError(str(exc)) from None  # pydantic reports ValueErrors with the field
        return value

    @field_validator("instruments", mode="before")
    @classmethod
    def _instruments(cls, value: Any) -> Instruments:
        if isinstance(value, Instruments):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a JSON object of symbol -> instrument fields, got {type(value).__name__}")
        try:
            return DEFAULT_INSTRUMENTS.with_overrides(value)
        except InstrumentError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _check_url(value, ("redis", "rediss", "unix"))
        db = urlsplit(value).path.lstrip("/")
        if urlsplit(value).scheme != "unix" and db and not db.isdigit():
            raise ValueError(f"the database {db!r} in the path is not a number")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _redis_sentinels(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for item in value.split(","):
            host, sep, port = item.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{item.strip()!r} is not host:port (e.g. redis-sentinel-0:26379)")
        return value

    @field_validator("postgres_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _check_postgres_hosts(value)
        try:
            conninfo_to_dict(value)  # libpq's own parser: unknown options, bad escapes
        except psycopg.ProgrammingError as exc:
            raise ValueError(str(exc).strip()) from None
        return value


def _is_secret(annotation: Any) -> bool:
    return any(isinstance(t, type) and issubclass(t, SecretStr | SecretBytes)
               for t in (annotation, *get_args(annotation)))


def _describe(exc: ValidationError, cls: type[Settings], init: Mapping[str, Any]) -> str:
    """One line for all errors: `SERVICE_PORT: <problem> (<origin>); SERVICE_...`."""
    secrets_dir = Path(init.get("secrets_dir") or os.environ.get(env_name("secrets_dir"))
                       or DEFAULT_SECRETS_DIR)
    errors = exc.errors()
    if any(e["loc"][:1] == ("name",) for e in errors):  # no catalogue port without a valid name
        errors = [e for e in errors if not (e["loc"][:1] == ("port",) and e["type"] == "missing")]
    lines = []
    for err in errors:
        loc = err["loc"]
        field = str(loc[0]) if loc else "?"
        var = peer_env_name(str(loc[1])) if field == "peers" and len(loc) > 1 else env_name(field)
        if err["type"] == "missing":
            problem = f"missing: set {var}, or {var}_FILE, or create {secrets_dir / var}"
        else:
            problem = err["msg"].removeprefix("Value error, ")
            info = cls.model_fields.get(field)
            shown = isinstance(err["input"], str) and repr(err["input"]) not in problem
            if shown and info is not None and not _is_secret(info.annotation):
                problem += f" (got {err['input'][:80]!r})"
            if field not in init:
                try:
                    found = read_setting(var, os.environ, secrets_dir)
                except SettingsError:
                    found = None
                if found is not None and found[1] != var:
                    problem += f", read from {found[1]}"
        lines.append(f"{var}: {problem}")
    return "; ".join(" ".join(line.split()) for line in lines)  # one line, whatever pydantic says


# --- loading for a service and connection helpers ---------------------------------------------

def load_settings(service: services.ServiceSpec, cls: type[Settings] = Settings) -> Settings:
    """Settings of `service` from the environment, requiring the backends it uses."""
    declared = os.environ.get(env_name("name"))
    if declared and declared != service.name:
        raise SettingsError(f"{env_name('name')}: {declared!r} does not match the service being "
                            f"started ({service.name!r})")
    settings = cls(name=service.name)
    if service.uses_redis and not settings.redis_url:
        raise SettingsError(f"{env_name('redis_url')}: missing; {service.name} needs Redis")
    if service.uses_postgres:
        if not settings.postgres_url:
            raise SettingsError(f"{env_name('postgres_url')}: missing; {service.name} needs PostgreSQL")
        if not settings.postgres_user and not conninfo_to_dict(settings.postgres_url).get("user"):
            raise SettingsError(f"{env_name('postgres_user')}: missing; set it, {env_name('postgres_user')}"
                                f"_FILE, or a user in {env_name('postgres_url')}")
    return settings


def redis_url(settings: Settings) -> str | None:
    """The effective Redis URL, password inserted. Holds a secret: log `redact(...)` instead."""
    if not settings.redis_url or settings.redis_password is None:
        return settings.redis_url
    password = quote(settings.redis_password.get_secret_value(), safe="")
    parts = urlsplit(settings.redis_url)
    if parts.scheme == "unix":  # a socket path has no netloc: redis-py takes it as a query option
        query = "&".join(q for q in (parts.query, f"password={password}") if q)
        return urlunsplit(parts._replace(query=query))
    user = quote(parts.username or "", safe="")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def postgres_conninfo(settings: Settings) -> str | None:
    """The PostgreSQL URL without credentials; pass `postgres_credentials()` next to it."""
    return settings.postgres_url


def postgres_credentials(settings: Settings) -> dict[str, Any]:
    """psycopg keyword arguments `user`/`password` (override the URL's); never log them."""
    creds: dict[str, Any] = {}
    if settings.postgres_user:
        creds["user"] = settings.postgres_user
    if settings.postgres_password is not None:
        creds["password"] = settings.postgres_password.get_secret_value()
    return creds


def redact(url: str | None) -> str | None:
    """`url` with any password replaced by `***`, for logs and error messages."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None and "password=" not in parts.query:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    query = "&".join("password=***" if q.startswith("password=") else q for q in parts.query.split("&"))
    return urlunsplit(parts._replace(netloc=netloc, query=query if parts.query else ""))
