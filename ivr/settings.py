"""Runtime settings, read from ``IVR_*`` environment variables.

Every setting has a default that works on a developer machine, so ``ivr serve`` starts
with no environment at all. :func:`load_settings` turns every validation problem into a
:class:`SettingsError` with one line per offending variable; secret values never appear
in errors, ``repr()`` or :meth:`Settings.describe`.

An empty variable (``IVR_AGI_PORT=``) counts as unset and its default applies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias, cast

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as _SourceError

__all__ = [
    "ENV_PREFIX",
    "IPNetwork",
    "LogFormat",
    "LogLevel",
    "Settings",
    "SettingsError",
    "env_var_name",
    "load_settings",
]

ENV_PREFIX = "IVR_"

IPNetwork: TypeAlias = IPv4Network | IPv6Network
LogFormat: TypeAlias = Literal["json", "console"]
LogLevel: TypeAlias = Literal["debug", "info", "warning", "error"]

Port = Annotated[int, Field(ge=1, le=65535)]

DEFAULT_ALLOWED_PEERS: tuple[IPNetwork, ...] = (
    IPv4Network("127.0.0.0/8"),
    IPv6Network("::1/128"),
)

_SECRET_FIELDS = frozenset({"ami_secret", "database_url", "caller_hash_secret"})
_DATABASE_SCHEMES = frozenset({"postgresql", "postgres"})
_PASSWORD_QUERY_KEYS = frozenset({"password", "sslpassword"})
_HIDDEN = "***"

# The environment that Settings() reads. None means os.environ; load_settings() sets it
# for the duration of one construction so a test's mapping is the only input.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("ivr_settings_environ", default=None)


def env_var_name(field_name: str) -> str:
    """The environment variable that sets ``field_name`` (``agi_port`` -> ``IVR_AGI_PORT``)."""
    return f"{ENV_PREFIX}{field_name.upper()}"


class SettingsError(Exception):
    """Invalid configuration. ``str()`` has one line per invalid environment variable."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


class _MappingEnvSource(EnvSettingsSource):
    """The stock environment source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {
            (key if self.case_sensitive else key.lower()): value
            for key, value in environ.items()
            if not (self.env_ignore_empty and value == "")
        }


def _setting_error(field_name: str, value: str, message: str) -> PydanticCustomError:
    """An error reported against ``field_name``'s variable from a model-level check."""
    return PydanticCustomError("ivr_setting", message, {"setting": field_name, "value": value})


def _parse_network(entry: str) -> IPNetwork:
    # strict=True rejects "10.0.0.1/8": in an allow-list a host address with a prefix is
    # more likely a typo than a request to admit the whole network.
    try:
        return ipaddress.ip_network(entry, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            raise ValueError(f"{entry!r} has host bits set; did you mean a network?") from None
        raise ValueError(f"{entry!r} is not an IPv4 or IPv6 address or network") from None


class Settings(BaseSettings):
    """Process settings. Build with :func:`load_settings` to get readable errors."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        case_sensitive=False,
        frozen=True,
    )

    config: Path = Path("config")
    """A menu file, or a directory holding ``menu.yaml``."""

    agi_host: str = "127.0.0.1"
    agi_port: Port = 4573
    agi_allowed_peers: Annotated[tuple[IPNetwork, ...], NoDecode] = DEFAULT_ALLOWED_PEERS
    """Who may open FastAGI connections; from the environment a comma-separated list."""
    agi_max_calls: Annotated[int, Field(ge=1, le=100_000)] = 2000
    """Calls served at once; more are handed back to the dialplan (``AGISTATUS=FAILURE``)."""
    agi_reply_timeout: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """Seconds to wait for Asterisk's reply to a command that plays nothing."""
    agi_media_timeout: Annotated[float, Field(gt=0, le=3600)] = 600.0
    """Seconds to wait for a command that plays prompts and waits for a key."""
    agi_env_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    """Seconds a new connection has to send its AGI environment."""
    shutdown_grace: Annotated[float, Field(ge=0, le=3600)] = 30.0
    """On SIGTERM, how long calls in progress may go on before the dialplan takes them."""
    prompt_dir: Annotated[str, Field(pattern=r"^[A-Za-z0-9_./-]*$", max_length=200)] = "ivr-aqui"
    """Folder of the line's prompts under Asterisk's sounds directory (language folder)."""
    say_datetime_format: Annotated[str, Field(max_length=200)] = "AdB 'digits/at' HM"
    """``SAY DATETIME`` format for the next opening (Asterisk ``say.conf`` syntax)."""
    agi_allow_time_override: bool = False
    """Honour ``?at=<ISO time>`` in the AGI URL (``ivr dial --at``). Development only."""

    ami_host: str = "127.0.0.1"
    ami_port: Port = 5038
    ami_user: str = "ivr"
    ami_secret: SecretStr | None = None
    ami_secret_file: Path | None = None
    """A file holding the AMI secret (for container secrets); excludes ``ami_secret``."""

    database_url: SecretStr | None = None
    """``postgresql://`` URL; unset means the embedded PostgreSQL under ``data_dir``."""
    database_url_file: Path | None = None
    """A file holding that URL (it carries a password: keep it out of the environment);
    excludes ``database_url``."""

    data_dir: Path = Path("var")
    """The embedded PostgreSQL (``pgdata``), the records spool and the generated key."""

    caller_hash_secret: SecretStr | None = None
    """Key of the HMAC that lets reports count repeat callers without their number.

    Every instance sharing a database needs the same key. Unset, a random key is created
    once in ``data_dir`` (fine for one instance)."""
    caller_hash_secret_file: Path | None = None
    """A file holding that key; excludes ``caller_hash_secret``."""

    retention_days: Annotated[int, Field(ge=1, le=36500)] = 365
    """Calls older than this lose the caller's number and name (``ivr purge``)."""

    records_queue_size: Annotated[int, Field(ge=100, le=10_000_000)] = 50_000
    """Records held in memory before the recorder spools new ones to disk."""

    metrics_host: str = "127.0.0.1"
    metrics_port: Port = 9108

    log_format: LogFormat = "json"
    log_level: LogLevel = "info"

    _secret_from_file: SecretStr | None = PrivateAttr(default=None)
    _hash_secret_from_file: SecretStr | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only explicit arguments and the environment: no .env file, no secrets directory.
        environ = _ENVIRON.get()
        env_source = env_settings if environ is None else _MappingEnvSource(settings_cls, environ)
        return init_settings, env_source

    @field_validator("agi_allowed_peers", mode="before")
    @classmethod
    def _split_peers(cls, value: object) -> object:
        if isinstance(value, str):
            entries: list[object] = [part.strip() for part in value.split(",")]
        elif isinstance(value, Iterable):
            entries = list(cast("Iterable[object]", value))
        else:
            return value
        networks: list[IPNetwork] = []
        problems: list[str] = []
        for entry in entries:
            if isinstance(entry, IPv4Network | IPv6Network):
                networks.append(entry)
                continue
            text = str(entry).strip()
            if not text:
                continue  # tolerate "a, b," and doubled commas
            try:
                networks.append(_parse_network(text))
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))
        if not networks:
            raise ValueError("list at least one address or network")
        return tuple(networks)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            return "warning" if value == "warn" else value
        return value

    @field_validator("ami_secret", "caller_hash_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if not secret:
            return None
        # AMI is a line-based protocol: a line break in the secret would inject headers.
        if "\r" in secret or "\n" in secret:
            raise ValueError("must not contain line breaks")
        return value

    @model_validator(mode="before")
    @classmethod
    def _database_url_from_file(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("database_url_file") in (None, ""):
            return data
        path = Path(data["database_url_file"])
        direct = data.get("database_url")
        url = _read_secret_file(
            "database_url_file",
            path,
            "database_url",
            SecretStr(str(direct)) if direct not in (None, "") else None,
        )
        scheme = url.get_secret_value().partition("://")[0].lower() if url is not None else ""
        if scheme not in _DATABASE_SCHEMES:
            raise _setting_error(
                "database_url_file", str(path), "the file must hold a postgresql:// URL"
            )
        return {**data, "database_url": url}

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value().strip()
        if not url:
            return None
        scheme = url.partition("://")[0].lower() if "://" in url else ""
        if scheme not in _DATABASE_SCHEMES:
            raise ValueError("must be a postgresql:// URL (leave it unset for the embedded one)")
        return SecretStr(url)

    @model_validator(mode="after")
    def _load_secret_files(self) -> Settings:
        self._secret_from_file = _read_secret_file(
            "ami_secret_file", self.ami_secret_file, "ami_secret", self.ami_secret
        )
        self._hash_secret_from_file = _read_secret_file(
            "caller_hash_secret_file",
            self.caller_hash_secret_file,
            "caller_hash_secret",
            self.caller_hash_secret,
        )
        return self

    def ami_password(self) -> str | None:
        """The AMI secret in clear text, from ``IVR_AMI_SECRET`` or the secret file."""
        secret = self.ami_secret if self.ami_secret is not None else self._secret_from_file
        return None if secret is None else secret.get_secret_value()

    def caller_hash_key(self) -> bytes | None:
        """The caller-number HMAC key from the environment or its file; None when unset."""
        secret = (
            self.caller_hash_secret
            if self.caller_hash_secret is not None
            else self._hash_secret_from_file
        )
        return None if secret is None else secret.get_secret_value().encode("utf-8")

    def uses_embedded_database(self) -> bool:
        """True when no ``IVR_DATABASE_URL`` is set and the embedded PostgreSQL is used."""
        return self.database_url is None

    def database_url_for_logs(self) -> str:
        """The database URL with its password hidden, or ``"embedded"``."""
        if self.database_url is None:
            return "embedded"
        return _redact_url(self.database_url.get_secret_value())

    def is_peer_allowed(self, address: str) -> bool:
        """Whether a FastAGI client at ``address`` (an IP, as from ``getpeername``) may connect."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.agi_allowed_peers)

    def describe(self) -> dict[str, str]:
        """A log-safe summary of the effective settings: no secret values."""
        return {
            "config": str(self.config),
            "agi_host": self.agi_host,
            "agi_port": str(self.agi_port),
            "agi_allowed_peers": ", ".join(str(net) for net in self.agi_allowed_peers),
            "agi_max_calls": str(self.agi_max_calls),
            "shutdown_grace": str(self.shutdown_grace),
            "prompt_dir": self.prompt_dir,
            "agi_allow_time_override": str(self.agi_allow_time_override).lower(),
            "ami_host": self.ami_host,
            "ami_port": str(self.ami_port),
            "ami_user": self.ami_user,
            "ami_secret": "set" if self.ami_password() is not None else "unset",
            "ami_secret_file": "" if self.ami_secret_file is None else str(self.ami_secret_file),
            "database": self.database_url_for_logs(),
            "data_dir": str(self.data_dir),
            "caller_hash_secret": "set" if self.caller_hash_key() is not None else "generated",
            "retention_days": str(self.retention_days),
            "records_queue_size": str(self.records_queue_size),
            "metrics_host": self.metrics_host,
            "metrics_port": str(self.metrics_port),
            "log_format": self.log_format,
            "log_level": self.log_level,
        }


def _read_secret_file(
    field_name: str, path: Path | None, direct_name: str, direct: SecretStr | None
) -> SecretStr | None:
    """Read a one-line secret from ``path``; errors never quote the file's content."""
    if path is None:
        return None
    shown = str(path)
    if direct is not None:
        raise _setting_error(
            field_name, shown, f"set either {env_var_name(direct_name)} or this, not both"
        )
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        # The codec's message quotes the offending byte: a piece of the secret.
        raise _setting_error(field_name, shown, "the file is not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _setting_error(field_name, shown, f"cannot read the file: {reason}") from None
    secret = content.rstrip("\r\n")
    if not secret:
        raise _setting_error(field_name, shown, "the file is empty")
    if "\r" in secret or "\n" in secret:
        raise _setting_error(field_name, shown, "the secret must be a single line")
    return SecretStr(secret)


def _redact_url(url: str) -> str:
    """Hide the password in a URL's user info and in ``password=`` query parameters."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _HIDDEN
    authority_end = next((i for i, char in enumerate(rest) if char in "/?#"), len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    userinfo, at, hostinfo = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.partition(':')[0]}:{_HIDDEN}@{hostinfo}"
    path, question, query_and_fragment = tail.partition("?")
    if question:
        query, hash_sign, fragment = query_and_fragment.partition("#")
        query = "&".join(
            f"{key}={_HIDDEN}" if eq and key.lower() in _PASSWORD_QUERY_KEYS else f"{key}{eq}{val}"
            for key, eq, val in (item.partition("=") for item in query.split("&"))
        )
        tail = f"{path}?{query}{hash_sign}{fragment}"
    return f"{scheme}://{authority}{tail}"


@contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENVIRON.set(env)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


def _format_errors(exc: ValidationError) -> list[str]:
    """One line per invalid variable, never showing a secret's value."""
    messages: dict[str, list[str]] = {}
    inputs: dict[str, object] = {}
    for error in exc.errors(include_url=False):
        ctx: dict[str, Any] = error.get("ctx") or {}
        loc = error["loc"]
        if "setting" in ctx:
            field = str(ctx["setting"])
        elif loc:
            field = str(loc[0])
        else:
            field = ""
        message = str(ctx["error"]) if error["type"] == "value_error" else error["msg"]
        message = " ".join(message.split())  # keep it on one line
        bucket = messages.setdefault(field, [])
        if message not in bucket:
            bucket.append(message)
        if "value" in ctx:
            inputs.setdefault(field, ctx["value"])
        elif field and len(loc) == 1:
            inputs.setdefault(field, error.get("input"))
    lines: list[str] = []
    for field, texts in messages.items():
        detail = "; ".join(texts)
        if not field:
            lines.append(f"invalid settings: {detail}")
            continue
        name = env_var_name(field)
        if field in _SECRET_FIELDS:
            lines.append(f"invalid setting {name} (value hidden): {detail}")
        elif field in inputs and isinstance(inputs[field], str):
            lines.append(f"invalid setting {name}={inputs[field]!r}: {detail}")
        else:
            lines.append(f"invalid setting {name}: {detail}")
    return lines


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``env`` (only that mapping) or from ``os.environ``.

    Raises :class:`SettingsError` listing every invalid variable, one per line.
    """
    with _environment(env):
        try:
            return Settings()
        except ValidationError as exc:
            raise SettingsError(_format_errors(exc)) from None
        except _SourceError as exc:
            # The stock source failed to read a variable; its message names no secret.
            raise SettingsError([" ".join(f"invalid settings: {exc}".split())]) from None
