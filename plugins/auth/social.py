"""The ``social`` plugin: the login flow every social provider shares.

Providers come from the ``swain_social_providers`` hook this plugin adds
(:mod:`.social_hookspecs`); ``google`` and ``github`` are two such plugins.

``GET /auth/{provider}/login`` starts an authorization-code flow with
``state``, PKCE (S256) and, for OpenID Connect providers, ``nonce``.  The
flow's secrets (state, PKCE verifier, nonce, redirect target) travel in an
HttpOnly, SameSite=Lax cookie, sealed (Fernet: AES-CBC + HMAC, with an expiry)
under a key derived from the signing secret.  The callback needs the cookie
to open and its state to match the query's; the cookie is cleared on use,
and the provider spends the code.  The server keeps nothing between the two
requests, so any worker or instance can take the callback.

``GET /auth/{provider}/callback`` exchanges the code (with the verifier),
asks the provider plugin for the caller's profile, resolves it to an account
through the ``social_profile`` card and issues tokens exactly as login does.

The callback URL is always ``api.public_url`` + ``/auth/{provider}/callback``,
never derived from the request.
"""

from __future__ import annotations

import base64
import functools
import secrets
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import click
import orjson
from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken

try:
    import authlib.deprecate  # noqa: F401 - installs authlib's own filter first
    import httpx

    with warnings.catch_warnings():
        # authlib announces future module moves on import; they do not concern callers
        warnings.simplefilter("ignore")
        from authlib.common.security import generate_token
        from authlib.integrations.base_client.errors import OAuthError
        from authlib.integrations.httpx_client import AsyncOAuth2Client
        from authlib.jose import JsonWebKey, JsonWebToken
        from authlib.jose.errors import JoseError
        from authlib.oauth2.rfc7636 import create_s256_code_challenge
    #: why social login cannot run here ("" when it can)
    MISSING = ""
except ImportError as exc:  # the plugins stay inert until a provider is configured
    MISSING = f"social login needs authlib and httpx ({exc}); pip install authlib httpx"

import pluggy

from swain.core import (
    BadRequest,
    Config,
    ConfigError,
    Forbidden,
    Runtime,
    ServiceKey,
    ServiceUnavailable,
    Setting,
    Unauthorized,
    hookimpl,
    json_response,
    public,
)
from swain.core.codec import dumps
from swain.core.plugins import collect
from swain.plugins.mapping import utcnow

from . import social_hookspecs
from .service import AuthService, accounts, auth_active
from .social_hookspecs import SocialProvider

__all__ = ["AsyncOAuth2Client", "JoseError", "JsonWebKey", "JsonWebToken", "Pending", "Profile",
           "SocialFlow", "SocialProvider", "add_paths", "allowed_redirect", "callback_url",
           "check_settings", "configured", "resolve_account"]

#: tokens come from the account service, as for a password login
requires = ("jwt",)

COOKIE_PREFIX = "swain_social_"

SOCIAL_SETTINGS: dict[str, Setting] = {
    "allow_signup": Setting("bool", True, doc="create an account on a first social login"),
    "redirect_allowlist": Setting("list", [], doc="URLs a login may name as redirect_url "
                                                  "(exact match)"),
    "state_ttl": Setting("duration", 600.0, minimum=10, doc="how long a login may take"),
    "timeout": Setting("duration", 10.0, minimum=1, doc="provider request timeout"),
}


@dataclass(frozen=True)
class Profile:
    """What a provider vouches for: its user id and (maybe) a verified email."""

    provider_user_id: str
    email: str | None
    email_verified: bool


@dataclass
class Pending:
    """A login in progress, as sealed in the browser's cookie."""

    state: str
    verifier: str
    nonce: str | None
    redirect_url: str | None


# -- redirect targets ---------------------------------------------------------------


def _parts(url: str) -> tuple[str, str, int | None, str, str] | None:
    """(scheme, host, port, path, query) of a plain http(s) URL, else None."""
    if not url or len(url) > 2048 or any(c in url for c in "\\\t\r\n ") or \
            any(ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return None
    if split.scheme not in ("http", "https") or not split.hostname or "@" in split.netloc \
            or split.fragment:
        return None
    default = 443 if split.scheme == "https" else 80
    return split.scheme, split.hostname.lower(), port or default, split.path or "/", split.query


def allowed_redirect(url: str, allowlist: Iterable[str]) -> bool:
    """True when ``url`` is exactly one of the allowlisted URLs (after parsing)."""
    wanted = _parts(url)
    return wanted is not None and any(_parts(a) == wanted for a in allowlist)


# -- the flow -----------------------------------------------------------------------


class SocialFlow:
    """One provider's login and callback, configured from ``[social.<provider>]``."""

    def __init__(self, provider: SocialProvider, config: Config) -> None:
        self.provider = provider
        self.name = provider.name
        self.config = config
        self.settings = config.section(f"social.{provider.name}")
        self.social = config.section("social")
        self.oidc = provider.oidc
        #: a provider plugin's own lookups, with the monotonic time they expire (e.g.
        #: Google's signing keys)
        self.cache: dict[str, tuple[float, Any]] = {}
        self._discovered: tuple[float, dict[str, Any]] | None = None

    #: discovery document key for each endpoint setting
    DISCOVERY_KEYS = {"authorize_url": "authorization_endpoint", "token_url": "token_endpoint",
                      "jwks_url": "jwks_uri", "issuer": "issuer"}

    async def endpoint(self, key: str) -> Any:
        """An endpoint setting; with ``discovery_url`` set, the provider's discovery
        document (fetched once an hour) supplies the endpoints instead."""
        discovery_url = self.settings.get("discovery_url")
        if not discovery_url or key not in self.DISCOVERY_KEYS:
            return self.settings.get(key)
        now = time.monotonic()
        if self._discovered is None or self._discovered[0] < now:
            try:
                async with httpx.AsyncClient(timeout=float(self.social.timeout)) as client:
                    response = await client.get(discovery_url)
                    response.raise_for_status()
                    document = response.json()
            except Exception:  # unreachable or not JSON
                raise ServiceUnavailable(f"{self.name} discovery document could not be "
                                         f"fetched") from None
            if not isinstance(document, Mapping) or not all(
                    isinstance(document.get(k), str) for k in self.DISCOVERY_KEYS.values()):
                raise ServiceUnavailable(f"{self.name} discovery document is incomplete")
            self._discovered = (now + 3600.0, dict(document))
        value = self._discovered[1][self.DISCOVERY_KEYS[key]]
        return [value] if key == "issuer" else value

    @property
    def callback_url(self) -> str:
        return callback_url(self.config, self.name)

    @property
    def cookie(self) -> str:
        return COOKIE_PREFIX + self.name

    def client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.client_id, client_secret=self.settings.client_secret,
            redirect_uri=self.callback_url, scope=self.settings.scope,
            token_endpoint_auth_method="client_secret_post",
            timeout=float(self.social.timeout))

    def _sealer(self, request: web.Request) -> Fernet:
        key = accounts(request).signer.derive_key(f"social-login:{self.name}")
        return Fernet(base64.urlsafe_b64encode(key))

    def _seal(self, request: web.Request, pending: Pending) -> str:
        return self._sealer(request).encrypt(orjson.dumps(asdict(pending))).decode()

    def _open(self, request: web.Request, sealed: str, state: str) -> Pending | None:
        """The cookie's login, if it opens, has not expired and is for ``state``."""
        if not sealed or not state:
            return None
        try:
            fields = orjson.loads(self._sealer(request).decrypt(
                sealed.encode(), ttl=int(self.social.state_ttl)))
            pending = Pending(**fields)
        except (InvalidToken, ValueError, TypeError):
            return None
        same = secrets.compare_digest(pending.state.encode(), state.encode())
        return pending if same else None

    async def login(self, request: web.Request) -> web.Response:
        redirect_url = request.query.get("redirect_url")
        if redirect_url is not None and not allowed_redirect(
                redirect_url, self.social.redirect_allowlist):
            raise BadRequest("redirect_url is not in social.redirect_allowlist")
        state = generate_token(43)
        verifier = generate_token(64)
        nonce = generate_token(32) if self.oidc else None
        ttl = float(self.social.state_ttl)
        sealed = self._seal(request, Pending(state, verifier, nonce, redirect_url))
        params = {"response_type": "code", "client_id": self.settings.client_id,
                  "redirect_uri": self.callback_url, "scope": self.settings.scope,
                  "state": state, "code_challenge": create_s256_code_challenge(verifier),
                  "code_challenge_method": "S256"}
        if nonce is not None:
            params["nonce"] = nonce
        location = await self.endpoint("authorize_url")
        location += ("&" if "?" in location else "?") + urlencode(params)
        response = web.Response(status=302, headers={"Location": location,
                                                     "Cache-Control": "no-store"})
        response.set_cookie(self.cookie, sealed, max_age=int(ttl), httponly=True,
                            samesite="Lax", path=f"/auth/{self.name}/",
                            secure=self.config.api.public_url.startswith("https:"))
        return response

    async def callback(self, request: web.Request) -> web.Response:
        query = request.query
        # Only the browser holding the sealed cookie of this state may finish the login.
        entry = self._open(request, request.cookies.get(self.cookie) or "",
                           query.get("state") or "")
        if entry is None:
            raise BadRequest("invalid or expired login state; start the login again")
        if "error" in query:
            raise Unauthorized(f"{self.name} refused the login: {query.get('error')}"[:200])
        code = query.get("code")
        if not code:
            raise BadRequest("the provider sent no authorization code")
        service = accounts(request)
        await service.limit(request, "login", None)
        token_url = await self.endpoint("token_url")
        async with self.client() as client:
            try:
                token = await client.fetch_token(token_url, code=code,
                                                 code_verifier=entry.verifier,
                                                 grant_type="authorization_code")
            except OAuthError as exc:
                raise Unauthorized(f"{self.name} refused the code: {exc.error}"[:200]) from None
            except Exception:  # network failure or a malformed answer
                raise Unauthorized(f"{self.name} token exchange failed") from None
            if not isinstance(token, Mapping) or not isinstance(token.get("access_token"), str) \
                    or not token.get("access_token"):
                raise Unauthorized(f"{self.name} answered without an access token")
            profile = await self.provider.fetch_profile(self, client, token, entry)
        user = await resolve_account(service, self.name, profile,
                                     bool(self.social.allow_signup))
        tokens = await service.issue_pair(user)
        if entry.redirect_url:
            response = web.Response(status=302, headers={
                "Location": entry.redirect_url + "#" + urlencode(tokens),
                "Cache-Control": "no-store"})
        else:
            response = json_response(dumps(tokens))
            response.headers["Cache-Control"] = "no-store"
        response.del_cookie(self.cookie, path=f"/auth/{self.name}/")
        return response

    def routes(self) -> list[web.RouteDef]:
        @public
        async def login(request: web.Request) -> web.Response:
            return await self.login(request)

        @public
        async def callback(request: web.Request) -> web.Response:
            return await self.callback(request)

        return [web.get(f"/auth/{self.name}/login", login),
                web.get(f"/auth/{self.name}/callback", callback)]


# -- accounts -----------------------------------------------------------------------


async def resolve_account(service: AuthService, provider: str, profile: Profile,
                          allow_signup: bool) -> dict[str, Any]:
    """The active user for a provider profile: linked, linked now by verified email,
    or created (when signup is allowed)."""
    if "social_profile" not in service.cards:
        raise ConfigError("social login needs [mapping.social_profile]")
    store = service.store
    puid = profile.provider_user_id
    if not puid:
        raise Unauthorized(f"{provider} sent no user id")
    found = await store.fetch_one("social_profile", [("provider", "eq", provider),
                                                     ("provideruserid", "eq", puid)],
                                  ["id", "userid"])
    user: dict[str, Any] | None
    if found is not None:
        user = await service.find_by_id(found["userid"])
    else:
        email = (profile.email or "").strip()
        if not profile.email_verified or "@" not in email:
            raise Unauthorized(f"{provider} did not vouch for a verified email address")
        user = await service.find_by_email(email)
        if user is None:
            if not allow_signup:
                raise Forbidden("no account for this address, and social signup is off")
            user = await _create_user(service, email)
        values: dict[str, Any] = {"userid": user["id"], "provider": provider,
                                  "provideruserid": puid, "email": email.lower()}
        if service.cards["social_profile"].has("createdat"):
            values["createdat"] = utcnow()
        await store.insert("social_profile", values)
    if user is None or not service.is_active(user):
        raise Forbidden("the account is inactive or no longer exists")
    return user


async def _create_user(service: AuthService, email: str) -> dict[str, Any]:
    card = service.cards["user"]
    # An unusable random password: the account signs in through the provider
    # (or sets a password by reset).
    values: dict[str, Any] = {"email": email.lower(),
                              "password": await service.passwords.hash(
                                  secrets.token_urlsafe(32))}
    if card.has("isactive"):
        values["isactive"] = bool(service.config.auth.signup_active)
    user_id = await service.store.insert("user", values)
    if user_id is None:
        found = await service.find_by_email(email)
        user_id = found["id"] if found else None
    user = await service.find_by_id(user_id)
    if user is None:
        raise Unauthorized("the account could not be created")
    return user


# -- plugin helpers -----------------------------------------------------------------


def callback_url(config: Config, provider: str) -> str:
    return str(config.api.public_url).rstrip("/") + f"/auth/{provider}/callback"


def configured(config: Config, provider: str) -> bool:
    """A provider acts when auth is active and its client id is set."""
    return auth_active(config) and bool(config.section(f"social.{provider}").get("client_id"))


def check_settings(config: Config, provider: str, keys: Iterable[str]) -> None:
    if MISSING:
        raise ConfigError(f"social.{provider}: {MISSING}")
    section = config.section(f"social.{provider}")
    for key in keys:
        if not section.get(key):
            raise ConfigError(f"social.{provider}.{key}: required when client_id is set")
    if config.section("mapping").get("social_profile") is None:
        raise ConfigError(f"social.{provider}: needs [mapping.social_profile] (the table "
                          f"linking provider accounts to users)")
    for url in config.section("social").redirect_allowlist:
        if _parts(url) is None:
            raise ConfigError(f"social.redirect_allowlist: not a plain http(s) URL: {url!r}")


def add_paths(spec: Any, provider: str, title: str) -> None:
    """The two endpoints of a provider in the OpenAPI document."""
    tag = "Authentication"
    redirect = {"name": "redirect_url", "in": "query", "required": False,
                "schema": {"type": "string", "format": "uri"},
                "description": "where to send the tokens (in the URL fragment); must be in "
                               "social.redirect_allowlist"}
    spec.path(path=f"/auth/{provider}/login", operations={"get": {
        "operationId": f"{provider}Login", "summary": f"Start a {title} login",
        "tags": [tag], "security": [], "parameters": [redirect],
        "responses": {302: {"description": f"Redirect to {title}."},
                      400: {"description": "redirect_url not allowed."}}}})
    spec.path(path=f"/auth/{provider}/callback", operations={"get": {
        "operationId": f"{provider}Callback", "summary": f"Complete a {title} login",
        "tags": [tag], "security": [],
        "parameters": [{"name": n, "in": "query", "required": False,
                        "schema": {"type": "string"}} for n in ("code", "state", "error")],
        "responses": {200: {"description": "Tokens, as from login.",
                            "content": {"application/json": {"schema": {"type": "object"}}}},
                      302: {"description": "Redirect to redirect_url with the tokens in the "
                                           "fragment."},
                      400: {"description": "Invalid state."},
                      401: {"description": "The provider did not vouch for the caller."},
                      403: {"description": "Signup off, or the account is inactive."}}}})


# -- the plugin ---------------------------------------------------------------------------


class Providers:
    """Every provider the hook returned, by name, and the flows of the configured ones:
    the ``SOCIAL`` service, made once per runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.config = runtime.config
        self.all = declared(runtime.pm, self.config, runtime)

    @functools.cached_property
    def flows(self) -> dict[str, SocialFlow]:
        """The configured providers' flows; a configured one lacking a setting refuses
        to start, naming it."""
        found = {}
        for name, provider in self.all.items():
            if configured(self.config, name):
                check_settings(self.config, name, provider.required_settings(
                    self.config.section(f"social.{name}")))
                found[name] = SocialFlow(provider, self.config)
        return found


def declared(pm: pluggy.PluginManager, config: Config,
             runtime: Runtime | None = None) -> dict[str, SocialProvider]:
    """Every provider the enabled plugins declare, by name (of two with one name, the
    one collected first); ``runtime`` None when nothing is served (the console)."""
    found: dict[str, SocialProvider] = {}
    for provider in collect(pm, "swain_social_providers", config=config, runtime=runtime):
        found.setdefault(provider.name, provider)
    return found


SOCIAL: ServiceKey[Providers] = ServiceKey("swain.social.providers", provider="social")


def providers(runtime: Runtime) -> Providers:
    return runtime.services.ensure(SOCIAL, lambda: Providers(runtime))


@hookimpl
def swain_addhooks(pm: pluggy.PluginManager) -> None:
    pm.add_hookspecs(social_hookspecs)


@hookimpl
def swain_config_sections() -> dict[str, dict[str, Setting]]:
    return {"social": SOCIAL_SETTINGS}


@hookimpl
def swain_routes(runtime: Runtime) -> Iterable[web.RouteDef]:
    return [route for flow in providers(runtime).flows.values() for route in flow.routes()]


@hookimpl
def swain_spec_contributions(spec: Any, runtime: Runtime) -> None:
    for flow in providers(runtime).flows.values():
        add_paths(spec, flow.name, flow.provider.title)


@hookimpl
def swain_cli_commands(cli: click.Group) -> None:
    @cli.group("social")
    def social_group() -> None:
        """Social login (Google, GitHub and any provider a plugin adds)."""

    @social_group.command("urls")
    @click.pass_context
    def urls(ctx: click.Context) -> None:
        """Print the callback URLs to register with each provider."""
        try:
            config, pm = ctx.obj.load()
            found = Providers(Runtime.create(config, pm)).all
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        for name in found:
            state = "" if config.section(f"social.{name}").get("client_id") \
                else "  (not configured)"
            click.echo(f"{name}: {callback_url(config, name)}{state}")
