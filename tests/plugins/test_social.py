"""Google and GitHub login against a local provider (contrib/testing/oauth_provider):
real HTTP between the API and the provider, PKCE, single-use codes, signed ID
tokens.  The users and social profiles live under unusual names: "Accounts"
and "Linked Logins" (with spaces in the column names)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import jwt
import pytest
from click.testing import CliRunner
from openapi_spec_validator import validate

from swain.contrib.testing import LiveServer, write_config
from swain.contrib.testing.oauth_provider import FakeOAuthProvider
from swain.core import create_app, hookimpl, load_config
from swain.core.cli import cli
from swain.plugins.auth.google import OidcProvider, oidc_settings

SECRET = "a social-test secret that is comfortably longer than thirty-two bytes"
PUBLIC_URL = "http://api.shop.example"
PROVIDER = FakeOAuthProvider(client_id="swain-client", client_secret="swain-client-secret")
PROVIDER.redirect_uris = {f"{PUBLIC_URL}/auth/{name}/callback"
                          for name in ("google", "github", "acme")}
APP_URL = "https://app.shop.example/after-login"

DDL = {
    "default": """
CREATE TABLE "Accounts" ("AcctId" INTEGER PRIMARY KEY, "Mail" VARCHAR(255) NOT NULL UNIQUE,
  "Secret" VARCHAR(255) NOT NULL, "Live" BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE "Linked Logins" ("Link Id" INTEGER PRIMARY KEY,
  "Acct" INTEGER NOT NULL REFERENCES "Accounts"("AcctId"), "Via" VARCHAR(50) NOT NULL,
  "External Id" VARCHAR(255) NOT NULL, "Mail Addr" VARCHAR(255), "Linked On" TIMESTAMP)
""",
    "postgresql": """
CREATE TABLE "Accounts" ("AcctId" SERIAL PRIMARY KEY, "Mail" VARCHAR(255) NOT NULL UNIQUE,
  "Secret" VARCHAR(255) NOT NULL, "Live" BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE "Linked Logins" ("Link Id" SERIAL PRIMARY KEY,
  "Acct" INTEGER NOT NULL REFERENCES "Accounts"("AcctId"), "Via" VARCHAR(50) NOT NULL,
  "External Id" VARCHAR(255) NOT NULL, "Mail Addr" VARCHAR(255), "Linked On" TIMESTAMPTZ)
""",
    "mysql": """
CREATE TABLE `Accounts` (`AcctId` INTEGER AUTO_INCREMENT PRIMARY KEY,
  `Mail` VARCHAR(255) NOT NULL UNIQUE, `Secret` VARCHAR(255) NOT NULL,
  `Live` TINYINT(1) NOT NULL DEFAULT 1);
CREATE TABLE `Linked Logins` (`Link Id` INTEGER AUTO_INCREMENT PRIMARY KEY,
  `Acct` INTEGER NOT NULL, `Via` VARCHAR(50) NOT NULL, `External Id` VARCHAR(255) NOT NULL,
  `Mail Addr` VARCHAR(255), `Linked On` DATETIME,
  FOREIGN KEY (`Acct`) REFERENCES `Accounts`(`AcctId`))
""",
}

SWAIN_CONFIG: dict[str, Any] = {
    "api": {"public_url": PUBLIC_URL},
    "auth": {"enabled": True, "jwt_secret": SECRET, "identity_cache": "0s",
             "signup_answer": "tokens",  # accounts made by signup, used at once
             "argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1},
    # each callback counts as a login attempt; this module makes many from one address
    "rate_limit": {"login_per_client": "1000/1m"},
    "mapping": {
        "user": {"table": "Accounts", "id": "AcctId", "email": "Mail", "password": "Secret",
                 "isactive": "Live"},
        "social_profile": {"table": "Linked Logins", "id": "Link Id", "userid": "Acct",
                           "provider": "Via", "provideruserid": "External Id",
                           "email": "Mail Addr", "createdat": "Linked On"},
    },
    "social": {
        "redirect_allowlist": [APP_URL, "http://localhost:3000/cb"],
        "google": {"client_id": PROVIDER.client_id, "client_secret": PROVIDER.client_secret,
                   "authorize_url": f"{PROVIDER.url}/authorize",
                   "token_url": f"{PROVIDER.url}/token", "jwks_url": f"{PROVIDER.url}/jwks",
                   "issuer": [PROVIDER.issuer], "leeway": "0s"},
        "github": {"client_id": PROVIDER.client_id, "client_secret": PROVIDER.client_secret,
                   "authorize_url": f"{PROVIDER.url}/authorize",
                   "token_url": f"{PROVIDER.url}/token", "api_base_url": PROVIDER.url},
    },
}

OPEN_REDIRECTS = [
    "//evil.example/after-login", "/\\evil.example", "\\\\evil.example",
    "javascript:alert(1)", "JavaScript:alert(1)//https://app.shop.example/after-login",
    "data:text/html,<script>alert(1)</script>", "https://evil.example/after-login",
    "https://app.shop.example@evil.example/after-login",
    "https://evil.example@app.shop.example/after-login",
    "https://app.shop.example.evil.example/after-login", "http://app.shop.example/after-login",
    "https://app.shop.example:8443/after-login", "https://app.shop.example/after-login/x",
    "https://app.shop.example/after-login?next=//evil", "https://app.shop.example/after-login#x",
    "https://app.shop.example/after-login\\@evil.example", " https://app.shop.example/after-login",
    "https://app.shop.example/after-login\n", "https:///app.shop.example/after-login",
    "https:app.shop.example/after-login", "/after-login", "",
]


@pytest.fixture(scope="module", autouse=True)
def provider() -> Iterator[FakeOAuthProvider]:
    with PROVIDER:
        yield PROVIDER


@pytest.fixture(autouse=True)
def _fresh_steering() -> None:
    PROVIDER.reset()


def _sql(database: Any, sql: str) -> str:
    return sql.replace('"', "`") if database.dialect == "mysql" else sql


def _q(database: Any, sql: str) -> list[tuple]:
    return database.query(_sql(database, sql))


def _run(database: Any, sql: str) -> None:
    with database.engine.begin() as conn:
        conn.exec_driver_sql(_sql(database, sql))


def _user(name: str, **profile: Any) -> str:
    PROVIDER.users[name] = profile
    return name


class Flow:
    """One browser: its own cookies, following the redirects by hand."""

    def __init__(self, server: LiveServer, provider: str, **params: str) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self.provider = provider
        self.login = self.http.get(f"/auth/{provider}/login", params=params)

    @property
    def authorize_url(self) -> str:
        assert self.login.status_code == 302, self.login.text
        return self.login.headers["Location"]

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.authorize_url).query).items()}

    def consent(self, login: str, **changes: str) -> dict[str, str]:
        """The user logs in at the provider: the code and state it sends back."""
        split = urlsplit(self.authorize_url)
        params = {**self.query, "login": login, **changes}
        r = httpx.get(urlunsplit((split.scheme, split.netloc, split.path, urlencode(params), "")))
        assert r.status_code == 302, r.text
        back = urlsplit(r.headers["Location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == \
            f"{PUBLIC_URL}/auth/{self.provider}/callback"
        return {k: v[0] for k, v in parse_qs(back.query).items()}

    def callback(self, params: dict[str, str]) -> httpx.Response:
        return self.http.get(f"/auth/{self.provider}/callback", params=params)

    def run(self, login: str) -> httpx.Response:
        return self.callback(self.consent(login))


def _me(client: httpx.Client, tokens: dict) -> dict:
    r = client.get("/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 200, r.text
    return r.json()["user"]


def _google(login: str, sub: str, email: str, verified: bool = True) -> str:
    return _user(login, sub=sub, email=email, email_verified=verified)


def _github(login: str, gid: Any, emails: list[dict], public_email: str | None = None) -> str:
    return _user(login, id=gid, login=login, email=public_email, emails=emails)


# -- success paths ----------------------------------------------------------------------


def test_login_redirect_carries_state_pkce_nonce_and_fixed_callback(server, client):
    flow = Flow(server, "google")
    r = flow.http.get("/auth/google/login", headers={"Host": "evil.example",
                                                     "X-Forwarded-Host": "evil.example"})
    query = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["Location"]).query).items()}
    assert query["redirect_uri"] == f"{PUBLIC_URL}/auth/google/callback"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["nonce"] and len(query["state"]) >= 32
    assert query["client_id"] == PROVIDER.client_id
    cookie = r.headers["Set-Cookie"]
    # the state travels sealed, never in the clear
    assert query["state"] not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    github = Flow(server, "github").query
    assert "nonce" not in github and github["code_challenge_method"] == "S256"
    assert github["state"] != query["state"]


def test_google_first_login_creates_user_then_reuses_profile(server, client, database):
    login = _google("ann", "g-ann-1", "Ann@Example.com")
    r = Flow(server, "google").run(login)
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["token_type"] == "bearer" and tokens["refresh_token"]
    me = _me(client, tokens)
    assert me["Mail"] == "ann@example.com"
    rows = _q(database, 'SELECT "Acct", "Via", "External Id", "Mail Addr", "Linked On" '
                        'FROM "Linked Logins" WHERE "External Id" = \'g-ann-1\'')
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(me["AcctId"], "google", "g-ann-1",
                                                         "ann@example.com")]
    assert rows[0][4] is not None
    # The same Google account again: the same user, no second profile row.
    PROVIDER.users[login]["email"] = "changed@example.com"
    again = Flow(server, "google").run(login)
    assert again.status_code == 200, again.text
    assert _me(client, again.json())["AcctId"] == me["AcctId"]
    assert len(_q(database, 'SELECT 1 FROM "Linked Logins" WHERE "External Id" = '
                            '\'g-ann-1\'')) == 1
    # refresh works as after a password login
    refreshed = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text


def test_github_links_existing_user_by_primary_verified_email(server, client, database):
    signup = client.post("/auth/signup", json={"email": "bob@example.com",
                                               "password": "bob-password-1"})
    assert signup.status_code == 201, signup.text
    bob_id = _me(client, signup.json())["AcctId"]
    login = _github("bob-gh", 4242, [
        {"email": "bob@other.example", "primary": False, "verified": True},
        {"email": "bob@example.com", "primary": True, "verified": True}],
        public_email="someone-else@example.com")
    r = Flow(server, "github").run(login)
    assert r.status_code == 200, r.text
    assert _me(client, r.json())["AcctId"] == bob_id
    rows = _q(database, 'SELECT "Acct", "Via", "Mail Addr" FROM "Linked Logins" '
                        'WHERE "External Id" = \'4242\'')
    assert [tuple(row) for row in rows] == [(bob_id, "github", "bob@example.com")]
    # the password login still works and names the same account
    login_r = client.post("/auth/login", json={"email": "bob@example.com",
                                               "password": "bob-password-1"})
    assert login_r.status_code == 200


def test_redirect_to_allowlisted_url_with_tokens_in_fragment(server, client):
    login = _google("cat", "g-cat", "cat@example.com")
    flow = Flow(server, "google", redirect_url=APP_URL)
    r = flow.run(login)
    assert r.status_code == 302, r.text
    target = urlsplit(r.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == APP_URL and not target.query
    fragment = {k: v[0] for k, v in parse_qs(target.fragment).items()}
    assert fragment["token_type"] == "bearer" and fragment["refresh_token"]
    assert _me(client, fragment)["Mail"] == "cat@example.com"


# -- state, PKCE and codes ----------------------------------------------------------------


def test_forged_missing_and_replayed_state_are_refused(server, database):
    login = _google("dan", "g-dan", "dan@example.com")
    flow = Flow(server, "google")
    params = flow.consent(login)
    forged = flow.callback({**params, "state": "forged-" + params["state"][7:]})
    assert forged.status_code == 400, forged.text
    # the state is fine but this browser never started the login (no cookie)
    other_browser = httpx.get(f"{server.url}/auth/google/callback", params=params)
    assert other_browser.status_code == 400
    # an attacker's own state cookie does not help either
    attacker = Flow(server, "google")
    assert attacker.callback(params).status_code == 400
    # a stranger cannot burn the genuine browser's state: only the matching cookie spends it
    ok = flow.callback(params)
    assert ok.status_code == 200, ok.text
    replay = flow.callback(params)
    assert replay.status_code == 400
    missing = flow.callback({"code": params["code"]})
    assert missing.status_code == 400
    assert not _q(database, 'SELECT 1 FROM "Accounts" WHERE "Mail" = \'forged@example.com\'')


def test_any_instance_finishes_the_login_and_the_cookie_is_sealed(server, config_path):
    """Nothing is kept between login and callback: another instance (or worker)
    takes the callback; a cookie altered, or sealed for another provider, opens nothing."""
    login = _google("ivy", "g-ivy", "ivy@example.com")
    flow = Flow(server, "google")
    sealed = flow.http.cookies["swain_social_google"]
    assert flow.query["state"] not in sealed and flow.query["nonce"] not in sealed
    params = flow.consent(login)
    cfg, pm = load_config(config_path, "development", environ={})
    with LiveServer(create_app(cfg, pm)) as other:
        url = f"{other.url}/auth/google/callback"
        tampered = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
        assert httpx.get(url, params=params, cookies={"swain_social_google": tampered}
                         ).status_code == 400
        as_github = httpx.get(f"{other.url}/auth/github/callback", params=params,
                              cookies={"swain_social_github": sealed})
        assert as_github.status_code == 400, as_github.text
        finished = flow.http.get(url, params=params)
        assert finished.status_code == 200, finished.text
        assert _me(httpx.Client(base_url=other.url), finished.json())["Mail"] == "ivy@example.com"


def test_google_signing_keys_are_cached_until_google_rotates_them(server):
    login = _google("kai", "g-kai", "kai@example.com")
    assert Flow(server, "google").run(login).status_code == 200
    fetched = PROVIDER.jwks_requests
    assert Flow(server, "google").run(login).status_code == 200
    assert PROVIDER.jwks_requests == fetched  # the cached key set served
    PROVIDER.rotate_key()
    r = Flow(server, "google").run(login)
    assert r.status_code == 200, r.text
    assert PROVIDER.jwks_requests == fetched + 1  # an unknown kid: fetched once more
    PROVIDER.sign_with_other_key = True  # a known kid with a forged signature: no refetch
    assert Flow(server, "google").run(login).status_code == 401
    assert PROVIDER.jwks_requests == fetched + 1


def test_wrong_pkce_verifier_and_replayed_code(server):
    login = _google("eve", "g-eve", "eve@example.com")
    # a code obtained for another challenge (code injection): the verifier fails
    flow = Flow(server, "google")
    params = flow.consent(login, code_challenge="A" * 43)
    r = flow.callback(params)
    assert r.status_code == 401 and "invalid_grant" in r.text
    # a code that was used once is refused the second time
    first = Flow(server, "google")
    used = first.consent(login)
    assert first.callback(used).status_code == 200
    second = Flow(server, "google")
    replayed = second.callback({"code": used["code"], "state": second.query["state"]})
    assert replayed.status_code == 401 and "invalid_grant" in replayed.text


# -- what the provider vouches for ------------------------------------------------------------


def test_unverified_or_missing_email_and_empty_user_id(server, database):
    cases = [
        ("google", _google("fay", "g-fay", "fay@example.com", verified=False)),
        ("google", _google("gus", "", "gus@example.com")),
        ("github", _github("hal", 77, [{"email": "hal@example.com", "primary": True,
                                        "verified": False}], public_email="hal@example.com")),
        ("github", _github("ian", 78, [{"email": "ian@example.com", "primary": False,
                                        "verified": True}])),
        ("github", _github("jon", None, [{"email": "jon@example.com", "primary": True,
                                          "verified": True}])),
        ("github", _github("kim", "absent", [{"email": "kim@example.com", "primary": True,
                                              "verified": True}])),
    ]
    for provider, login in cases:
        r = Flow(server, provider).run(login)
        assert r.status_code == 401, (login, r.status_code, r.text)
    names = ("fay", "gus", "hal", "ian", "jon", "kim")
    for name in names:
        assert not _q(database, f'SELECT 1 FROM "Accounts" WHERE "Mail" = \'{name}@example.com\'')
    # an unverified address never links to the existing account of that address
    _google("bob-fake", "g-bob-fake", "bob2@example.com", verified=False)
    assert Flow(server, "google").run("bob-fake").status_code == 401


def test_provider_error_responses(server):
    login = _google("lea", "g-lea", "lea@example.com")
    for status, body in [(400, {"error": "invalid_grant"}), (200, {"token_type": "bearer"}),
                         (200, {"access_token": "", "token_type": "bearer"}),
                         (500, {"message": "down"})]:
        PROVIDER.token_response = (status, body)
        r = Flow(server, "google").run(login)
        assert r.status_code == 401, (body, r.text)
    PROVIDER.token_response = None
    flow = Flow(server, "google")
    denied = flow.callback({"error": "access_denied", "state": flow.query["state"]})
    assert denied.status_code == 401 and "access_denied" in denied.text


@pytest.mark.parametrize("claims,other_key", [
    ({"aud": "someone-else"}, False), ({"iss": "https://evil.example"}, False),
    ({"nonce": "not-this-login"}, False), ({"exp": 1_000_000_000, "iat": 999_999_000}, False),
    ({"nonce": None}, False), ({}, True)])
def test_id_token_validation(server, claims, other_key):
    login = _google("max", "g-max", "max@example.com")
    PROVIDER.id_token_claims = claims
    PROVIDER.sign_with_other_key = other_key
    r = Flow(server, "google").run(login)
    assert r.status_code == 401, r.text
    assert "ID token" in r.json()["error"]["message"]


def test_inactive_user_refused(server, client, database):
    signup = client.post("/auth/signup", json={"email": "ned@example.com",
                                               "password": "ned-password-1"})
    assert signup.status_code == 201
    login = _google("ned", "g-ned", "ned@example.com")
    assert Flow(server, "google").run(login).status_code == 200
    false = "0" if database.dialect == "mysql" else "FALSE"
    _run(database, f'UPDATE "Accounts" SET "Live" = {false} WHERE "Mail" = \'ned@example.com\'')
    r = Flow(server, "google").run(login)
    assert r.status_code == 403, r.text


# -- redirect targets ----------------------------------------------------------------------------


def test_open_redirect_corpus_is_refused(server):
    for target in OPEN_REDIRECTS:
        r = Flow(server, "google", redirect_url=target).login
        assert r.status_code == 400, (target, r.status_code)
        assert "Set-Cookie" not in r.headers
    for target in (APP_URL, "http://localhost:3000/cb", "HTTPS://APP.shop.example:443/after-login"):
        assert Flow(server, "github", redirect_url=target).login.status_code == 302, target


# -- signup off, docs and CLI ------------------------------------------------------------------


def test_signup_disallowed(database, tmp_path: Path):
    config = {**SWAIN_CONFIG, "social": {**SWAIN_CONFIG["social"], "allow_signup": False}}
    path = write_config(tmp_path, database.swain_url, **config)
    cfg, pm = load_config(path, "development", environ={})
    with LiveServer(create_app(cfg, pm)) as live:
        login = _google("ola", "g-ola", "ola@example.com")
        r = Flow(live, "google").run(login)
        assert r.status_code == 403, r.text
        assert not _q(database, 'SELECT 1 FROM "Accounts" WHERE "Mail" = \'ola@example.com\'')
        # an existing account still links by verified email
        _run(database, 'INSERT INTO "Accounts" ("Mail", "Secret") VALUES (\'pia@example.com\', '
                     '\'x\')')
        login = _github("pia", 99, [{"email": "pia@example.com", "primary": True,
                                     "verified": True}])
        assert Flow(live, "github").run(login).status_code == 200


def test_google_endpoints_from_discovery_document(database, tmp_path: Path):
    google = {"client_id": PROVIDER.client_id, "client_secret": PROVIDER.client_secret,
              "discovery_url": f"{PROVIDER.url}/.well-known/openid-configuration",
              "authorize_url": "http://127.0.0.1:9/unused", "leeway": "0s"}
    config = {**SWAIN_CONFIG, "social": {"google": google}}
    path = write_config(tmp_path, database.swain_url, **config)
    cfg, pm = load_config(path, "development", environ={})
    with LiveServer(create_app(cfg, pm)) as live:
        login = _google("rex", "g-rex", "rex@example.com")
        flow = Flow(live, "google")
        assert flow.authorize_url.startswith(f"{PROVIDER.url}/authorize?")
        assert flow.run(login).status_code == 200
        PROVIDER.id_token_claims = {"iss": "https://accounts.google.com"}
        assert Flow(live, "google").run(login).status_code == 401
        # github is not configured here: no such route (auth answers first for unknown paths)
        assert Flow(live, "github").login.status_code in (401, 404)


class AcmeLogin:
    """A third provider, as a company would add its own OpenID Connect login: a plugin
    declaring its section and returning a provider, with no change anywhere else."""

    __name__ = "acme_login"
    requires = ("social",)

    @hookimpl
    def swain_config_sections(self) -> dict[str, Any]:
        return {"social.acme": oidc_settings()}

    @hookimpl
    def swain_social_providers(self) -> list[Any]:
        return [OidcProvider("acme", "Acme")]


def test_a_third_provider_is_a_plugin(database, tmp_path: Path):
    acme = {"client_id": PROVIDER.client_id, "client_secret": PROVIDER.client_secret,
            "discovery_url": f"{PROVIDER.url}/.well-known/openid-configuration", "leeway": "0s"}
    config = {**SWAIN_CONFIG, "social": {**SWAIN_CONFIG["social"], "acme": acme}}
    path = write_config(tmp_path, database.swain_url, **config)
    cfg, pm = load_config(path, "development", environ={}, plugins=[AcmeLogin()])
    with LiveServer(create_app(cfg, pm)) as live:
        login = _google("sol", "acme-sol", "sol@example.com")
        tokens = Flow(live, "acme").run(login)
        assert tokens.status_code == 200, tokens.text
        http = httpx.Client(base_url=live.url, timeout=30)
        assert _me(http, tokens.json())["Mail"] == "sol@example.com"
        via = _q(database, 'SELECT "Via", "External Id" FROM "Linked Logins" '
                           'WHERE "External Id" = \'acme-sol\'')
        assert via == [("acme", "acme-sol")]
        document = http.get("/openapi.json").json()
        assert document["paths"]["/auth/acme/login"]["get"]["operationId"] == "acmeLogin"
    # without its client_id it is listed, but serves nothing
    cfg, pm = load_config(write_config(tmp_path, database.swain_url, **SWAIN_CONFIG),
                          "development", environ={}, plugins=[AcmeLogin()])
    with LiveServer(create_app(cfg, pm)) as live:
        assert httpx.get(f"{live.url}/auth/acme/login", timeout=30).status_code in (401, 404)


def test_openapi_lists_social_endpoints_and_cli_prints_urls(client, config_path):
    document = client.get("/openapi.json").json()
    validate(document)
    paths = document["paths"]
    for provider in ("google", "github"):
        assert "get" in paths[f"/auth/{provider}/login"]
        assert "get" in paths[f"/auth/{provider}/callback"]
    result = CliRunner().invoke(cli, ["--config", str(config_path), "social", "urls"])
    assert result.exit_code == 0, result.output
    assert f"google: {PUBLIC_URL}/auth/google/callback" in result.output
    assert f"github: {PUBLIC_URL}/auth/github/callback" in result.output


def test_issued_tokens_are_the_login_kind(server, client):
    login = _google("quinn", "g-quinn", "quinn@example.com")
    tokens = Flow(server, "google").run(login).json()
    claims = jwt.decode(tokens["access_token"], SECRET, algorithms=["HS256"],
                        options={"verify_iss": False})
    assert claims["typ"] == "access" and claims["sub"] == str(_me(client, tokens)["AcctId"])
