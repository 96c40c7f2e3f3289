"""The hash format verifiers themselves, without a database: Django's and
Werkzeug's hashes at the libraries' own default costs, the failure vectors of
ASP.NET Identity's test suite, and any string at all (never an exception,
never unbounded work)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from password_hashes import ASPNET_PASSWORD, LEGACY, MALFORMED, library_defaults

from swain.core import PasswordVerifier, Runtime, load_config
from swain.plugins.auth.passwords import identify, registered

DEFAULTS = library_defaults()


@pytest.fixture(scope="module")
def verifiers(tmp_path_factory) -> list[PasswordVerifier]:
    path = tmp_path_factory.mktemp("config") / "swain.toml"
    path.write_text('[connections.development]\nurl = "sqlite:///unused.db"\n')
    config, pm = load_config(path, "development", environ={})
    return registered(Runtime.create(config, pm))


@pytest.mark.parametrize("stored", DEFAULTS, ids=[s.username for s in DEFAULTS])
def test_library_defaults_verify(verifiers, stored):
    found = identify(verifiers, stored.encoded)
    assert found is not None and found[1].format == stored.label and found[1].problem is None
    verifier = found[0]
    assert verifier.verify(stored.encoded, stored.password)
    assert not verifier.verify(stored.encoded, stored.password.upper())


@pytest.mark.parametrize("stored", LEGACY, ids=[s.username for s in LEGACY])
def test_each_vector_is_named_and_verifies(verifiers, stored):
    found = identify(verifiers, stored.encoded)
    assert found is not None, stored.username
    assert found[1].format == stored.label and found[1].problem is None
    assert found[0].verify(stored.encoded, stored.password)
    assert not found[0].verify(stored.encoded, stored.password[:-1])


@pytest.mark.parametrize("encoded", [
    # dotnet/aspnetcore PasswordHasherTest.VerifyHashedPassword_FailureCases ("my password")
    "AAABAgMEBQYHCAkKCwwNDg+uAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAALtH1uJg==",
    "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggE=",
    "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJgAAAAAAAAAAAAA=",
    "AQAAAAAAAAD6AAAAEAhftMyfTJyAAAAAAAAAAAAAAAAAAAih5WsjXaR3PA9M",
    "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4A=",
    "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHwAAAAAAAAAAAA",
])
def test_aspnet_failure_vectors_fail(verifiers, encoded):
    assert not any(v.verify(encoded, ASPNET_PASSWORD) for v in verifiers)


@pytest.mark.parametrize("stored", MALFORMED, ids=[s.username for s in MALFORMED])
def test_malformed_values_are_named_with_a_reason_and_cost_nothing(verifiers, stored):
    found = identify(verifiers, stored.encoded)
    assert found is not None and found[1].format == stored.label
    assert found[1].problem
    started = time.perf_counter()
    assert not found[0].verify(stored.encoded, stored.password)
    assert time.perf_counter() - started < 0.1


_PIECES = st.sampled_from(["$", ":", "{", "}", "pbkdf2_sha256", "pbkdf2:sha256:", "scrypt:",
                           "$2b$", "$argon2id$v=19$m=", "{scrypt}", "{pbkdf2}", "AQAAAA", "=",
                           "99999999999", "16", ",t=", ",p=", "bcrypt_sha256", "argon2"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=12)), max_size=10).map("".join))
def test_any_string_is_safe_and_bounded(verifiers, encoded):
    started = time.perf_counter()
    for verifier in verifiers:
        verifier.inspect(encoded)
        assert verifier.verify(encoded, "password") is False
    assert time.perf_counter() - started < 1.0
