"""Settings from IVR_* environment variables (ivr.settings)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ivr.settings import Settings, SettingsError, load_settings

SECRET = "Sup3r-s3cret-AMI"  # noqa: S105 - a fake secret to look for in output
DB_PASSWORD = "pg-Pa55word"  # noqa: S105 - same


def load_error(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as excinfo:
        load_settings(env)
    return str(excinfo.value)


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.config == Path("config")
    assert settings.agi_host == "127.0.0.1"
    assert settings.agi_port == 4573
    assert settings.agi_allowed_peers == (IPv4Network("127.0.0.0/8"), IPv6Network("::1/128"))
    assert settings.ami_host == "127.0.0.1"
    assert settings.ami_port == 5038
    assert settings.ami_user == "ivr"
    assert settings.ami_secret is None
    assert settings.ami_secret_file is None
    assert settings.ami_password() is None
    assert settings.database_url is None
    assert settings.uses_embedded_database()
    assert settings.data_dir == Path("var")
    assert settings.metrics_host == "127.0.0.1"
    assert settings.metrics_port == 9108
    assert settings.log_format == "json"
    assert settings.log_level == "info"


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "expected"),
    [
        ("IVR_CONFIG", "/etc/ivr/menu.yaml", "config", Path("/etc/ivr/menu.yaml")),
        ("IVR_AGI_HOST", "0.0.0.0", "agi_host", "0.0.0.0"),  # noqa: S104 - a value under test
        ("IVR_AGI_PORT", "4600", "agi_port", 4600),
        ("IVR_AMI_HOST", "pbx.internal", "ami_host", "pbx.internal"),
        ("IVR_AMI_PORT", "5039", "ami_port", 5039),
        ("IVR_AMI_USER", "linea", "ami_user", "linea"),
        ("IVR_DATA_DIR", "/var/lib/ivr", "data_dir", Path("/var/lib/ivr")),
        ("IVR_METRICS_HOST", "10.1.2.3", "metrics_host", "10.1.2.3"),
        ("IVR_METRICS_PORT", "9200", "metrics_port", 9200),
        ("IVR_LOG_FORMAT", "console", "log_format", "console"),
        ("IVR_LOG_FORMAT", "JSON", "log_format", "json"),
        ("IVR_LOG_LEVEL", "debug", "log_level", "debug"),
        ("IVR_LOG_LEVEL", "WARNING", "log_level", "warning"),
        ("IVR_LOG_LEVEL", "Warn", "log_level", "warning"),
        ("IVR_LOG_LEVEL", "Error", "log_level", "error"),
        ("IVR_AGI_ALLOWED_PEERS", "10.0.0.0/8", "agi_allowed_peers", (IPv4Network("10.0.0.0/8"),)),
    ],
)
def test_each_variable_parses(variable: str, raw: str, attribute: str, expected: Any) -> None:
    settings = load_settings({variable: raw})
    assert getattr(settings, attribute) == expected


def test_secret_and_database_url_parse() -> None:
    url = f"postgresql://ivr:{DB_PASSWORD}@db.internal:5432/ivr"
    settings = load_settings({"IVR_AMI_SECRET": SECRET, "IVR_DATABASE_URL": url})
    assert settings.ami_password() == SECRET
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == url
    assert not settings.uses_embedded_database()


def test_empty_variables_mean_defaults() -> None:
    settings = load_settings({"IVR_AGI_PORT": "", "IVR_DATABASE_URL": "", "IVR_AMI_SECRET": ""})
    assert settings.agi_port == 4573
    assert settings.database_url is None
    assert settings.database_url_for_logs() == "embedded"
    assert settings.ami_password() is None


def test_mapping_is_the_only_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_AGI_PORT", "4999")
    monkeypatch.setenv("IVR_LOG_FORMAT", "console")
    assert load_settings({}).agi_port == 4573
    assert load_settings({"IVR_LOG_LEVEL": "debug"}).log_format == "json"
    from_environ = load_settings()
    assert from_environ.agi_port == 4999
    assert from_environ.log_format == "console"


def test_peers_from_a_comma_separated_list() -> None:
    settings = load_settings({"IVR_AGI_ALLOWED_PEERS": "127.0.0.1, 10.0.0.0/8,::1, fd00::/8,"})
    assert settings.agi_allowed_peers == (
        IPv4Network("127.0.0.1/32"),
        IPv4Network("10.0.0.0/8"),
        IPv6Network("::1/128"),
        IPv6Network("fd00::/8"),
    )
    assert settings.is_peer_allowed("10.20.30.40")
    assert settings.is_peer_allowed("127.0.0.1")
    assert settings.is_peer_allowed("::ffff:10.1.1.1")
    assert settings.is_peer_allowed("fd12::5")
    assert not settings.is_peer_allowed("127.0.0.2")
    assert not settings.is_peer_allowed("192.168.1.10")
    assert not settings.is_peer_allowed("not-an-ip")


def test_peers_from_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_AGI_ALLOWED_PEERS", "192.0.2.7, 2001:db8::/32")
    assert load_settings().agi_allowed_peers == (
        IPv4Network("192.0.2.7/32"),
        IPv6Network("2001:db8::/32"),
    )


def test_default_peers_are_loopback_only() -> None:
    settings = load_settings({})
    assert settings.is_peer_allowed("127.0.0.1")
    assert settings.is_peer_allowed("::1")
    assert not settings.is_peer_allowed("10.0.0.1")


def test_invalid_peers_are_named() -> None:
    message = load_error({"IVR_AGI_ALLOWED_PEERS": "127.0.0.1, bogus, 10.0.0.1/8"})
    assert message == (
        "invalid setting IVR_AGI_ALLOWED_PEERS='127.0.0.1, bogus, 10.0.0.1/8': "
        "'bogus' is not an IPv4 or IPv6 address or network; "
        "'10.0.0.1/8' has host bits set; did you mean a network?"
    )


def test_peers_must_not_be_only_commas() -> None:
    message = load_error({"IVR_AGI_ALLOWED_PEERS": " , ,"})
    assert message == (
        "invalid setting IVR_AGI_ALLOWED_PEERS=' , ,': list at least one address or network"
    )


def test_invalid_port_is_one_line_naming_the_variable() -> None:
    message = load_error({"IVR_AGI_PORT": "abc"})
    assert message == (
        "invalid setting IVR_AGI_PORT='abc': "
        "Input should be a valid integer, unable to parse string as an integer"
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    ("variable", "raw", "reason"),
    [
        ("IVR_AGI_PORT", "0", "Input should be greater than or equal to 1"),
        ("IVR_AMI_PORT", "65536", "Input should be less than or equal to 65535"),
        ("IVR_METRICS_PORT", "-1", "Input should be greater than or equal to 1"),
    ],
)
def test_ports_must_be_in_range(variable: str, raw: str, reason: str) -> None:
    assert load_error({variable: raw}) == f"invalid setting {variable}={raw!r}: {reason}"


def test_invalid_log_format_names_the_variable() -> None:
    message = load_error({"IVR_LOG_FORMAT": "xml"})
    assert message == "invalid setting IVR_LOG_FORMAT='xml': Input should be 'json' or 'console'"


def test_invalid_log_level_names_the_variable() -> None:
    message = load_error({"IVR_LOG_LEVEL": "verbose"})
    assert message.startswith("invalid setting IVR_LOG_LEVEL='verbose': Input should be ")
    assert "'debug'" in message


def test_every_invalid_variable_gets_its_own_line() -> None:
    message = load_error({"IVR_AGI_PORT": "abc", "IVR_LOG_FORMAT": "xml", "IVR_METRICS_PORT": "0"})
    lines = message.splitlines()
    assert len(lines) == 3
    assert [line.split("=", 1)[0] for line in lines] == [
        "invalid setting IVR_AGI_PORT",
        "invalid setting IVR_METRICS_PORT",
        "invalid setting IVR_LOG_FORMAT",
    ]


def test_settings_error_lists_problems() -> None:
    with pytest.raises(SettingsError) as excinfo:
        load_settings({"IVR_AGI_PORT": "x", "IVR_AMI_PORT": "y"})
    assert len(excinfo.value.problems) == 2
    assert str(excinfo.value) == "\n".join(excinfo.value.problems)


def test_secret_from_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "ami_secret"
    secret_file.write_text(f"{SECRET}\n", encoding="utf-8")
    settings = load_settings({"IVR_AMI_SECRET_FILE": str(secret_file)})
    assert settings.ami_password() == SECRET
    assert settings.ami_secret_file == secret_file
    assert settings.describe()["ami_secret"] == "set"  # noqa: S105 - a status, not a secret
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


def test_secret_and_secret_file_together_are_rejected(tmp_path: Path) -> None:
    secret_file = tmp_path / "ami_secret"
    secret_file.write_text("other\n", encoding="utf-8")
    message = load_error({"IVR_AMI_SECRET": SECRET, "IVR_AMI_SECRET_FILE": str(secret_file)})
    assert message == (
        f"invalid setting IVR_AMI_SECRET_FILE={str(secret_file)!r}: "
        "set either IVR_AMI_SECRET or this, not both"
    )
    assert SECRET not in message


def test_missing_secret_file_names_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    message = load_error({"IVR_AMI_SECRET_FILE": str(missing)})
    assert message == (
        f"invalid setting IVR_AMI_SECRET_FILE={str(missing)!r}: "
        "cannot read the file: No such file or directory"
    )


def test_empty_secret_file_is_rejected(tmp_path: Path) -> None:
    secret_file = tmp_path / "empty"
    secret_file.write_text("\n", encoding="utf-8")
    message = load_error({"IVR_AMI_SECRET_FILE": str(secret_file)})
    assert message.startswith("invalid setting IVR_AMI_SECRET_FILE=")
    assert message.endswith(": the file is empty")


def test_non_utf8_secret_file_does_not_quote_its_bytes(tmp_path: Path) -> None:
    secret_file = tmp_path / "binary"
    secret_file.write_bytes(b"abc\xfe\xff")
    message = load_error({"IVR_AMI_SECRET_FILE": str(secret_file)})
    assert message.endswith(": the file is not UTF-8 text")
    assert "xfe" not in message
    assert "0xff" not in message


def test_secret_never_appears_in_str_repr_or_describe() -> None:
    url = f"postgresql://ivr:{DB_PASSWORD}@db:5432/ivr"
    settings = load_settings({"IVR_AMI_SECRET": SECRET, "IVR_DATABASE_URL": url})
    for text in (str(settings), repr(settings), repr(settings.describe())):
        assert SECRET not in text
        assert DB_PASSWORD not in text
    assert settings.describe()["ami_secret"] == "set"  # noqa: S105 - a status, not a secret
    assert settings.describe()["database"] == "postgresql://ivr:***@db:5432/ivr"


def test_invalid_secret_is_not_echoed() -> None:
    bad_secret = f"{SECRET}\r\nAction: Originate"
    message = load_error({"IVR_AMI_SECRET": bad_secret})
    assert message == "invalid setting IVR_AMI_SECRET (value hidden): must not contain line breaks"
    assert SECRET not in message


def test_invalid_database_url_is_not_echoed() -> None:
    message = load_error({"IVR_DATABASE_URL": f"mysql://ivr:{DB_PASSWORD}@db/ivr"})
    assert message == (
        "invalid setting IVR_DATABASE_URL (value hidden): "
        "must be a postgresql:// URL (leave it unset for the embedded one)"
    )
    assert DB_PASSWORD not in message


def test_secret_not_in_errors_about_other_variables() -> None:
    message = load_error({"IVR_AMI_SECRET": SECRET, "IVR_AMI_PORT": "x"})
    assert message.startswith("invalid setting IVR_AMI_PORT='x': ")
    assert SECRET not in message


def test_describe_is_a_complete_log_safe_summary() -> None:
    assert load_settings({}).describe() == {
        "config": "config",
        "agi_host": "127.0.0.1",
        "agi_port": "4573",
        "agi_allowed_peers": "127.0.0.0/8, ::1/128",
        "agi_max_calls": "2000",
        "shutdown_grace": "30.0",
        "prompt_dir": "ivr-aqui",
        "agi_allow_time_override": "false",
        "ami_host": "127.0.0.1",
        "ami_port": "5038",
        "ami_user": "ivr",
        "ami_secret": "unset",
        "ami_secret_file": "",
        "database": "embedded",
        "data_dir": "var",
        "caller_hash_secret": "generated",
        "retention_days": "365",
        "records_queue_size": "50000",
        "metrics_host": "127.0.0.1",
        "metrics_port": "9108",
        "log_format": "json",
        "log_level": "info",
    }


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"postgresql://ivr:{DB_PASSWORD}@db.internal:5432/ivr",
            "postgresql://ivr:***@db.internal:5432/ivr",
        ),
        (
            f"postgres://ivr:{DB_PASSWORD}@db/ivr?sslmode=require",
            "postgres://ivr:***@db/ivr?sslmode=require",
        ),
        (
            f"postgresql://ivr@db/ivr?sslmode=require&password={DB_PASSWORD}",
            "postgresql://ivr@db/ivr?sslmode=require&password=***",
        ),
        ("postgresql://ivr@db/ivr", "postgresql://ivr@db/ivr"),
        ("postgresql:///ivr?host=/run/postgresql", "postgresql:///ivr?host=/run/postgresql"),
    ],
)
def test_database_url_for_logs_hides_the_password(url: str, shown: str) -> None:
    settings = load_settings({"IVR_DATABASE_URL": url})
    assert settings.database_url_for_logs() == shown


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(ValidationError):
        settings.agi_port = 1  # type: ignore[misc]


def test_direct_construction_accepts_keywords() -> None:
    settings = Settings(agi_port=4600, agi_allowed_peers="192.168.0.0/16", log_level="DEBUG")
    assert settings.agi_port == 4600
    assert settings.agi_allowed_peers == (IPv4Network("192.168.0.0/16"),)
    assert settings.log_level == "debug"


def test_caller_hash_secret_from_environment_and_file(tmp_path: Path) -> None:
    assert load_settings({}).caller_hash_key() is None
    direct = load_settings({"IVR_CALLER_HASH_SECRET": SECRET})
    assert direct.caller_hash_key() == SECRET.encode()
    assert SECRET not in repr(direct)
    assert direct.describe()["caller_hash_secret"] == "set"  # noqa: S105 - a state, not a key
    key_file = tmp_path / "hash.key"
    key_file.write_text(f"{SECRET}\n", encoding="utf-8")
    from_file = load_settings({"IVR_CALLER_HASH_SECRET_FILE": str(key_file)})
    assert from_file.caller_hash_key() == SECRET.encode()


def test_caller_hash_secret_and_its_file_together_are_rejected(tmp_path: Path) -> None:
    key_file = tmp_path / "hash.key"
    key_file.write_text("other\n", encoding="utf-8")
    message = load_error(
        {"IVR_CALLER_HASH_SECRET": SECRET, "IVR_CALLER_HASH_SECRET_FILE": str(key_file)}
    )
    assert message == (
        f"invalid setting IVR_CALLER_HASH_SECRET_FILE={str(key_file)!r}: "
        "set either IVR_CALLER_HASH_SECRET or this, not both"
    )
    assert SECRET not in message


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("IVR_RETENTION_DAYS", "0"),
        ("IVR_RETENTION_DAYS", "a year"),
        ("IVR_RECORDS_QUEUE_SIZE", "10"),
    ],
)
def test_records_limits_are_validated(variable: str, raw: str) -> None:
    assert load_error({variable: raw}).startswith(f"invalid setting {variable}={raw!r}: ")


def test_records_limits_from_environment() -> None:
    settings = load_settings({"IVR_RETENTION_DAYS": "90", "IVR_RECORDS_QUEUE_SIZE": "1000"})
    assert (settings.retention_days, settings.records_queue_size) == (90, 1000)


def test_agi_settings_are_validated_with_their_variable() -> None:
    assert load_settings({"IVR_AGI_MAX_CALLS": "500"}).agi_max_calls == 500
    assert load_settings({"IVR_AGI_ALLOW_TIME_OVERRIDE": "true"}).agi_allow_time_override
    assert "IVR_AGI_MAX_CALLS" in load_error({"IVR_AGI_MAX_CALLS": "0"})
    assert "IVR_SHUTDOWN_GRACE" in load_error({"IVR_SHUTDOWN_GRACE": "-1"})
    # The prompt folder ends up in AGI commands: only file-name characters.
    assert "IVR_PROMPT_DIR" in load_error({"IVR_PROMPT_DIR": 'ivr" EXEC'})


def test_database_url_from_file(tmp_path: Path) -> None:
    url_file = tmp_path / "database_url"
    url_file.write_text(f"postgresql://ivr:{DB_PASSWORD}@db:5432/ivr\n", encoding="utf-8")
    settings = load_settings({"IVR_DATABASE_URL_FILE": str(url_file)})
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == f"postgresql://ivr:{DB_PASSWORD}@db:5432/ivr"
    assert not settings.uses_embedded_database()
    assert settings.describe()["database"] == "postgresql://ivr:***@db:5432/ivr"
    assert DB_PASSWORD not in repr(settings)


@pytest.mark.parametrize(
    ("content", "extra", "problem"),
    [
        ("mysql://ivr@db/ivr\n", {}, "the file must hold a postgresql:// URL"),
        ("\n", {}, "the file is empty"),
        ("postgresql://a/b\n", {"IVR_DATABASE_URL": "postgresql://c/d"},
         "set either IVR_DATABASE_URL or this, not both"),
    ],
)  # fmt: skip
def test_bad_database_url_files_name_the_variable(
    tmp_path: Path, content: str, extra: dict[str, str], problem: str
) -> None:
    url_file = tmp_path / "database_url"
    url_file.write_text(content, encoding="utf-8")
    message = load_error({"IVR_DATABASE_URL_FILE": str(url_file), **extra})
    assert message == f"invalid setting IVR_DATABASE_URL_FILE={str(url_file)!r}: {problem}"
