"""swain.toml: stages, interpolation, overrides, kinds, and errors that name their key path.

These tests load real files through :func:`swain.core.load_config` (the
same path ``swain serve`` takes), with an explicit environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swain.core import ConfigError, load_config
from swain.core.config import masked, parse_duration, parse_size


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "swain.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, stage: str | None = None,
         environ: dict[str, str] | None = None) -> Any:
    config, _ = load_config(write(tmp_path, text), stage, environ=environ or {})
    return config


def error(tmp_path: Path, text: str, stage: str | None = None,
          environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        config = load(tmp_path, text, stage, environ)
        config.connection()
    return str(caught.value)


BASE = '[connections.development]\nurl = "sqlite:///dev.db"\n'


# -- stages ----------------------------------------------------------------------------


STAGES = '''
[connections.development]
url = "sqlite:///dev.db"

[connections.production]
dialect = "postgresql"
host = "db.internal"
port = 6543
database = "shop"
username = "api"
password = "s3cret"
pool_size = 4
'''


def test_stage_defaults_to_development(tmp_path: Path) -> None:
    config = load(tmp_path, STAGES)
    assert config.stage == "development"
    assert config.connection().dialect == "sqlite"


def test_stage_from_argument_and_from_swain_stage(tmp_path: Path) -> None:
    config = load(tmp_path, STAGES, stage="production")
    connection = config.connection()
    assert (connection.dialect, connection.url.host, connection.url.port) == \
        ("postgresql", "db.internal", 6543)
    assert connection.url.database == "shop" and connection.url.password == "s3cret"
    assert connection.pool_size == 4
    from_env = load(tmp_path, STAGES, environ={"SWAIN_STAGE": "production"})
    assert from_env.stage == "production"
    assert from_env.connection().url.host == "db.internal"


def test_missing_stage_names_its_key_path_and_the_configured_ones(tmp_path: Path) -> None:
    message = error(tmp_path, STAGES, stage="staging")
    assert message.startswith("connections.staging:")
    assert "development, production" in message
    assert "swain connection add --stage staging" in message


def test_unset_secret_of_another_stage_does_not_block_this_one(tmp_path: Path) -> None:
    text = BASE + '[connections.production]\nurl = "postgresql://api@db/shop"\n' \
                  'password = "${PROD_DB_PASSWORD}"\n'
    config = load(tmp_path, text)
    assert config.connection().dialect == "sqlite"
    with pytest.raises(ConfigError, match=r"^connections\.production\.password: environment "
                                          r"variable PROD_DB_PASSWORD is not set"):
        config.connection("production")
    message = error(tmp_path, text, stage="production")
    assert message.startswith("connections.production.password: environment variable "
                              "PROD_DB_PASSWORD")
    resolved = load(tmp_path, text, stage="production", environ={"PROD_DB_PASSWORD": "pw"})
    assert resolved.connection().url.password == "pw"


def test_stage_names_are_identifiers(tmp_path: Path) -> None:
    message = error(tmp_path, '[connections.Production]\nurl = "sqlite:///x.db"\n')
    assert message.startswith("connections.Production: stage names are lower-case")


# -- interpolation ---------------------------------------------------------------------


def test_interpolation_with_defaults_and_escapes(tmp_path: Path) -> None:
    text = BASE + '''
[project]
name = "${NAME}"
description = "costs $$5 at ${HOST:-localhost}:${PORT:-}"
'''
    config = load(tmp_path, text, environ={"NAME": "shop"})
    assert config.project.name == "shop"
    assert config.project.description == "costs $5 at localhost:"
    config = load(tmp_path, text, environ={"NAME": "shop", "HOST": "db", "PORT": "1"})
    assert config.project.description == "costs $5 at db:1"


def test_interpolated_values_are_coerced_to_the_setting_kind(tmp_path: Path) -> None:
    text = BASE + '[api]\nmax_page_size = "${MAX:-500}"\n'
    assert load(tmp_path, text).api.max_page_size == 500
    assert load(tmp_path, text, environ={"MAX": "70"}).api.max_page_size == 70


def test_unset_variable_names_key_path_and_variable(tmp_path: Path) -> None:
    message = error(tmp_path, BASE + '[project]\nname = "${PROJECT_NAME}"\n')
    assert message.startswith("project.name: environment variable PROJECT_NAME is not set")
    assert "${PROJECT_NAME:-default}" in message


def test_unset_variable_in_a_list_names_the_index(tmp_path: Path) -> None:
    message = error(tmp_path, BASE + '[api]\nexclude_tables = ["a", "${T}"]\n')
    assert message.startswith("api.exclude_tables[1]: environment variable T is not set")


def test_malformed_reference_is_an_error(tmp_path: Path) -> None:
    message = error(tmp_path, BASE + '[project]\nname = "${BROKEN"\n')
    assert message.startswith("project.name: malformed reference")


# -- environment overrides -------------------------------------------------------------


def test_section_key_overrides(tmp_path: Path) -> None:
    text = BASE + '[api]\nmax_page_size = 100\n'
    config = load(tmp_path, text, environ={
        "SWAIN_API_MAX_PAGE_SIZE": "250",
        "SWAIN_API_EXCLUDE_TABLES": '["a", "b"]',
        "SWAIN_AUTH_ENABLED": "false",
        "SWAIN_LOGGING_LEVEL": "debug",
    })
    assert config.api.max_page_size == 250
    assert config.api.exclude_tables == ["a", "b"]
    assert config.auth.enabled is False
    assert config.logging.level == "debug"


def test_override_is_validated_with_its_key_path(tmp_path: Path) -> None:
    message = error(tmp_path, BASE, environ={"SWAIN_API_MAX_PAGE_SIZE": "lots"})
    assert message == "api.max_page_size: expected an integer, got 'lots'"


def test_override_of_a_plugin_section(tmp_path: Path) -> None:
    # [example] is declared by the example plugin, installed through its entry point.
    text = BASE + '[example]\ngreeting = "Hi"\n'
    assert load(tmp_path, text).example.greeting == "Hi"
    config = load(tmp_path, text, environ={"SWAIN_EXAMPLE_GREETING": "Howdy"})
    assert config.example.greeting == "Howdy"


def test_connection_overrides_per_stage(tmp_path: Path) -> None:
    environ = {
        "SWAIN_CONNECTIONS_PRODUCTION_PASSWORD": "from-env",
        "SWAIN_CONNECTIONS_PRODUCTION_POOL_SIZE": "7",
        "SWAIN_CONNECTIONS_PRE_PROD_URL": "postgresql://u@pre/x",
    }
    config = load(tmp_path, STAGES, stage="production", environ=environ)
    connection = config.connection()
    assert connection.url.password == "from-env" and connection.pool_size == 7
    assert config.connection("pre_prod").url.host == "pre"


def test_values_from_overrides_are_not_interpolated(tmp_path: Path) -> None:
    config = load(tmp_path, BASE, environ={"SWAIN_PROJECT_NAME": "${NOT_A_REFERENCE}"})
    assert config.project.name == "${NOT_A_REFERENCE}"


# -- kinds -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800), ("1h30m", 5400), ("250ms", 0.25),
    ("45", 45), (30, 30),
])
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text, "x") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "1x", "h1", "", "1h30", True])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ConfigError, match=r"^auth\.ttl: expected a duration like 90s"):
        parse_duration(text, "auth.ttl")


def test_statement_timeout_follows_the_client_side_bound(tmp_path: Path) -> None:
    assert load(tmp_path, BASE).connection().statement_timeout == 9
    shorter = BASE.replace('"\n', '"\nquery_timeout = "3s"\n')
    assert load(tmp_path, shorter).connection().statement_timeout == pytest.approx(2.4)
    longer = BASE.replace('"\n', '"\nstatement_timeout = "30s"\n')
    with pytest.raises(ConfigError, match=r"statement_timeout: 30s .* query_timeout \(10s\)"):
        load(tmp_path, longer).connection()


@pytest.mark.parametrize(("text", "size"), [
    ("512kb", 512 * 1024), ("1mb", 1024**2), ("1MiB", 1024**2), ("2g", 2 * 1024**3),
    ("100", 100), (4096, 4096),
])
def test_sizes(text: Any, size: int) -> None:
    assert parse_size(text, "x") == size


def test_duration_and_size_settings_in_a_file(tmp_path: Path) -> None:
    text = BASE.replace('"\n', '"\nconnect_timeout = "1m"\nstatement_timeout = "90s"\n'
                        'query_timeout = "2m"\n') + \
        '[api]\nmax_body_size = "2mb"\n[server]\nshutdown_timeout = "15s"\n'
    config = load(tmp_path, text)
    connection = config.connection()
    assert (connection.connect_timeout, connection.statement_timeout,
            connection.query_timeout) == (60, 90, 120)
    assert config.api.max_body_size == 2 * 1024**2
    assert config.server.shutdown_timeout == 15


@pytest.mark.parametrize(("body", "expected"), [
    ('[api]\nmax_page_size = "many"', "api.max_page_size: expected an integer, got 'many'"),
    ("[api]\nmax_page_size = 2.5", "api.max_page_size: expected an integer, got 2.5"),
    ('[auth]\nenabled = "perhaps"', "auth.enabled: expected true or false, got 'perhaps'"),
    ("[project]\nname = 5", "project.name: expected a string, got 5"),
    ("[api]\nexclude_tables = 3", "api.exclude_tables: expected a list, got 3"),
    ('[api]\nexclude_tables = ["a", 3]', "api.exclude_tables[1]: expected a string, got 3"),
    ('[api]\nmax_body_size = "huge"', "api.max_body_size: expected a size like 512kb or 1mb"),
    ('[server]\nshutdown_timeout = "later"',
     "server.shutdown_timeout: expected a duration like 90s, 15m, 1h or 7d"),
    ('[logging]\nlevel = "loud"', "logging.level: expected one of debug, info, warning, error"),
    ("[api]\nmax_page_size = 0", "api.max_page_size: must be at least 1, got 0"),
    ("api = 3", "api: expected a table, got 3"),
    ("[api]\ndefault_page_size = 50\nmax_page_size = 10",
     "api.default_page_size: 50 exceeds api.max_page_size (10)"),
])
def test_wrong_types_name_key_path_and_expectation(tmp_path: Path, body: str,
                                                    expected: str) -> None:
    # A top-level key must come before the first [table] header.
    text = BASE + body + "\n" if body.startswith("[") else body + "\n" + BASE
    assert error(tmp_path, text).startswith(expected)


def test_wrong_type_of_a_secret_does_not_echo_it(tmp_path: Path) -> None:
    message = error(tmp_path, BASE.replace('"\n', '"\npassword = 123456789\n'))
    assert message == "connections.development.password: expected a string, got a secret value"
    assert "123456789" not in message


# -- unknown keys ----------------------------------------------------------------------


@pytest.mark.parametrize(("body", "path", "suggestion"), [
    ("[api]\nmax_pagesize = 10", "api.max_pagesize: unknown key", 'did you mean "max_page_size"?'),
    ("[apii]\nx = 1", "apii: unknown section", 'did you mean "api"?'),
    ("[exmaple]\ngreeting = 'x'", "exmaple: unknown section", 'did you mean "example"?'),
    ("[example]\ngreetng = 'x'", "example.greetng: unknown key", 'did you mean "greeting"?'),
    ('[connections.development]\nurl = "sqlite:///x.db"\npasword = "x"',
     "connections.development.pasword: unknown key", 'did you mean "password"?'),
])
def test_unknown_keys_name_path_and_suggest(tmp_path: Path, body: str, path: str,
                                           suggestion: str) -> None:
    text = body + "\n" if body.startswith("[connections") else BASE + body + "\n"
    message = error(tmp_path, text)
    assert message.startswith(path)
    assert suggestion in message


def test_unknown_key_without_a_near_miss_lists_allowed(tmp_path: Path) -> None:
    message = error(tmp_path, BASE + "[schema]\nzzz = 1\n")
    assert message == "schema.zzz: unknown key (allowed: snapshot)"


def test_section_of_a_disabled_plugin_is_unknown(tmp_path: Path) -> None:
    text = BASE + '[plugins]\ndisable = ["example"]\n[example]\ngreeting = "x"\n'
    message = error(tmp_path, text)
    assert message.startswith("example: unknown section; no enabled plugin reads it")


# -- connections -----------------------------------------------------------------------


def test_connection_from_fields(tmp_path: Path) -> None:
    text = '''[connections.development]
dialect = "mariadb"
host = "127.0.0.1"
port = 3306
database = "shop"
username = "root"
'''
    connection = load(tmp_path, text).connection()
    assert connection.dialect == "mysql"
    assert (connection.url.host, connection.url.port, connection.url.database,
            connection.url.username) == ("127.0.0.1", 3306, "shop", "root")


def test_fields_beside_a_url_replace_its_parts(tmp_path: Path) -> None:
    text = '''[connections.development]
url = "postgresql://api@db.internal/shop"
password = "${DB_PASSWORD}"
port = 6432
'''
    connection = load(tmp_path, text, environ={"DB_PASSWORD": "pw"}).connection()
    assert (connection.url.username, connection.url.password, connection.url.port) == \
        ("api", "pw", 6432)
    assert connection.safe_url == "postgresql://api:***@db.internal:6432/shop"


def test_url_scheme_aliases(tmp_path: Path) -> None:
    text = '[connections.development]\nurl = "postgres://api@db/shop"\n'
    assert load(tmp_path, text).connection().dialect == "postgresql"


@pytest.mark.parametrize(("body", "expected"), [
    ('url = "not a url"', "connections.development.url: not a database URL"),
    ('dialect = "postgresql"\nhost = "x"', "connections.development.database: required"),
    ('host = "x"', "connections.development: give either url, or dialect"),
    ('url = "sqlite:///x.db"\ndialect = "postgresql"',
     "connections.development.dialect: 'postgresql' contradicts the URL's 'sqlite'"),
    ('dialect = "postgress"\ndatabase = "x"',
     "connections.development.dialect: no dialect 'postgress' is installed; did you mean "
     '"postgresql"?'),
    ('url = "sqlite:///x.db"\nport = "fivefour"',
     "connections.development.port: expected an integer, got 'fivefour'"),
    ('url = "sqlite:///x.db"\npool_size = 0',
     "connections.development.pool_size: must be at least 1"),
])
def test_connection_errors_name_their_key_path(tmp_path: Path, body: str, expected: str) -> None:
    assert error(tmp_path, f"[connections.development]\n{body}\n").startswith(expected)


def test_relative_sqlite_paths_resolve_against_the_project_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (project / "swain.toml").write_text(
        '[connections.development]\nurl = "sqlite:///data/shop.db"\n'
        '[connections.staging]\ndialect = "sqlite"\ndatabase = "stage.db"\n', encoding="utf-8")
    config, _ = load_config(Path("../project/swain.toml"), environ={})
    assert config.connection().url.database == str(project.resolve() / "data" / "shop.db")
    assert config.connection("staging").url.database == str(project.resolve() / "stage.db")
    absolute = tmp_path / "abs.db"
    (project / "swain.toml").write_text(
        f'[connections.development]\nurl = "sqlite:///{absolute}"\n', encoding="utf-8")
    config, _ = load_config(project / "swain.toml", environ={})
    assert config.connection().url.database == str(absolute)


# -- masking ---------------------------------------------------------------------------


def test_masked_hides_every_secret(tmp_path: Path) -> None:
    text = '''[connections.development]
url = "postgresql://api:url-secret@db/shop"

[connections.production]
dialect = "postgresql"
host = "db"
database = "shop"
password = "field-secret"

[connections.staging]
url = "postgresql://api@db/shop"
password = "${STAGING_PASSWORD}"

[example]
token = "plugin-secret"
'''
    shown = masked(load(tmp_path, text))
    flat = repr(shown)
    for secret in ("url-secret", "field-secret", "plugin-secret"):
        assert secret not in flat
    assert shown["example"]["token"] == "********"
    assert shown["connections"]["production"]["password"] == "********"
    assert shown["connections"]["development"]["url"] == "postgresql://api:***@db/shop"
    assert "STAGING_PASSWORD" in shown["connections"]["staging"]["unresolved"]
    assert shown["example"]["greeting"] == "Hello"


# -- plugin sections: nested and wildcard ----------------------------------------------


class NestedSections:
    """A plugin declaring [social] with a fixed [social.google] and any [limits.<name>]."""

    __name__ = "nested_sections"

    @staticmethod
    def swain_config_sections() -> dict[str, dict[str, Any]]:
        from swain.core import Setting
        from swain.core.config import required

        return {
            "social": {"allow_signup": Setting("bool", True)},
            "social.google": {"client_id": required("str"),
                              "client_secret": Setting("str", None, secret=True)},
            "social.github": {"scope": Setting("str", "user:email")},
            "limits.*": {"rate": Setting("int", 10), "window": Setting("duration", 60.0)},
        }


def load_nested(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Any:
    config, _ = load_config(write(tmp_path, BASE + text), environ=environ or {},
                            plugins=[NestedSections()])
    return config


def test_nested_and_wildcard_sections(tmp_path: Path) -> None:
    config = load_nested(tmp_path, '''
[social]
allow_signup = false
[social.google]
client_id = "cid"
client_secret = "very-secret"
[limits.login]
rate = 5
window = "15m"
[limits.signup]
''', environ={"SWAIN_SOCIAL_GOOGLE_CLIENT_ID": "from-env", "SWAIN_SOCIAL_GITHUB_SCOPE": "read"})
    assert config.social.allow_signup is False
    assert config.section("social.google").client_id == "from-env"
    # absent sub-sections without required keys get their defaults
    assert config.section("social.github").scope == "read"
    assert config.section("limits.login").window == 900
    assert config.section("limits.signup").rate == 10
    shown = masked(config)
    assert shown["social"]["google"]["client_secret"] == "********"
    assert shown["limits"]["login"]["rate"] == 5


def test_nested_section_errors_name_their_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r'^social\.gogle: unknown key; did you mean "google"'):
        load_nested(tmp_path, '[social.gogle]\nclient_id = "x"\n')
    with pytest.raises(ConfigError, match=r"^social\.google\.client_id: required"):
        load_nested(tmp_path, '[social.google]\nclient_secret = "x"\n')
    with pytest.raises(ConfigError, match=r"^limits\.login\.window: expected a duration"):
        load_nested(tmp_path, '[limits.login]\nwindow = "soon"\n')
    with pytest.raises(ConfigError, match=r"^social\.google\.client_secret: expected a string, "
                                          r"got a secret value$"):
        load_nested(tmp_path, '[social.google]\nclient_id = "x"\nclient_secret = 42\n')
