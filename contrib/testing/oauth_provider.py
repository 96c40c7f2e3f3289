"""A small OAuth 2 / OpenID Connect provider for tests, served on a loopback port.

It behaves like Google and GitHub where a client can tell: it checks the
client id and secret, the redirect URI given at authorization, the PKCE
verifier (S256) and issues single-use codes; it signs ID tokens (RS256) with
a key it publishes at ``/jwks`` (announced by
``/.well-known/openid-configuration``); and it serves GitHub-style ``/user``
and ``/user/emails`` for its access tokens.

Tests steer it through plain attributes: :attr:`users` (who may log in, by
login name), :attr:`id_token_claims` (claims to override in the next ID
tokens), :attr:`sign_with_other_key` and :attr:`token_response` (a canned
answer from the token endpoint, e.g. an error body).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from . import LiveServer, free_port


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _error(code: str, status: int = 400) -> web.Response:
    return web.json_response({"error": code}, status=status)


class FakeOAuthProvider:
    """The provider; :meth:`start` serves it, :attr:`url` is its origin."""

    KID = "test-key-1"

    def __init__(self, client_id: str = "test-client", client_secret: str = "test-secret",
                 port: int | None = None) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        #: redirect URIs a client may use (exact match)
        self.redirect_uris: set[str] = set()
        #: login name → profile: sub, email, email_verified, emails (GitHub style), id
        self.users: dict[str, dict[str, Any]] = {}
        #: claims merged into every ID token (e.g. {"aud": "other"}); None drops a claim
        self.id_token_claims: dict[str, Any] = {}
        self.sign_with_other_key = False
        #: a canned token endpoint answer: (status, JSON body)
        self.token_response: tuple[int, Any] | None = None
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, str] = {}
        self.token_requests = 0
        self.jwks_requests = 0
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._server: LiveServer | None = None

    @property
    def issuer(self) -> str:
        return self.url

    def reset(self) -> None:
        """Forget the per-test steering (not users, codes or tokens)."""
        self.id_token_claims = {}
        self.sign_with_other_key = False
        self.token_response = None

    # -- endpoints -------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.KID, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("response_type") != "code" or q.get("client_id") != self.client_id:
            return _error("unauthorized_client")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            return _error("invalid_request: redirect_uri not registered")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return _error("invalid_request: PKCE S256 required")
        login = q.get("login", "")
        if login not in self.users:
            return _error("access_denied")
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"redirect_uri": redirect_uri, "challenge": q["code_challenge"],
                            "nonce": q.get("nonce"), "login": login, "used": False}
        params = {"code": code}
        if "state" in q:
            params["state"] = q["state"]  # passed through untouched
        raise web.HTTPFound(f"{redirect_uri}?{urlencode(params)}")

    def _client_credentials(self, request: web.Request, form: Any) -> tuple[str, str]:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user, password
        return form.get("client_id", ""), form.get("client_secret", "")

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        client_id, secret = self._client_credentials(request, form)
        if client_id != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            return _error("invalid_client", 401)
        if form.get("grant_type") != "authorization_code":
            return _error("unsupported_grant_type")
        grant = self.codes.get(str(form.get("code", "")))
        if grant is None or grant["used"]:
            return _error("invalid_grant")
        grant["used"] = True  # single use, even when the rest is wrong
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return _error("invalid_grant")
        if _s256(str(form.get("code_verifier", ""))) != grant["challenge"]:
            return _error("invalid_grant")
        if self.token_response is not None:
            status, canned = self.token_response
            return web.json_response(canned, status=status)
        access = secrets.token_urlsafe(24)
        self.access_tokens[access] = grant["login"]
        body: dict[str, Any] = {"access_token": access, "token_type": "bearer",
                                "expires_in": 3600, "scope": "openid email"}
        if grant["nonce"] is not None:
            body["id_token"] = self.id_token(grant["login"], grant["nonce"])
        return web.json_response(body)

    def id_token(self, login: str, nonce: str | None) -> str:
        user = self.users[login]
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "aud": self.client_id, "sub": user["sub"],
                                  "iat": now, "exp": now + 600, "nonce": nonce,
                                  "email": user.get("email"),
                                  "email_verified": user.get("email_verified", False)}
        claims.update(self.id_token_claims)
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self._other_key if self.sign_with_other_key else self._key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.KID})

    def _bearer(self, request: web.Request) -> dict[str, Any] | None:
        header = request.headers.get("Authorization", "")
        login = self.access_tokens.get(header[7:]) if header.startswith("Bearer ") else None
        return self.users.get(login) if login else None

    async def user(self, request: web.Request) -> web.Response:
        user = self._bearer(request)
        if user is None:
            return web.json_response({"message": "Bad credentials"}, status=401)
        profile = {"login": user.get("login", "someone"), "email": user.get("email")}
        if user.get("id", "absent") != "absent":
            profile["id"] = user.get("id")
        return web.json_response(profile)

    async def user_emails(self, request: web.Request) -> web.Response:
        user = self._bearer(request)
        if user is None:
            return web.json_response({"message": "Bad credentials"}, status=401)
        return web.json_response(user.get("emails", []))

    async def serve_jwks(self, request: web.Request) -> web.Response:
        self.jwks_requests += 1
        return web.json_response(self.jwks())

    def rotate_key(self) -> None:
        """Sign with a new key under a new ``kid`` from now on (and publish only it)."""
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.KID = f"test-key-{time.time_ns()}"

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.issuer, "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"]})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        app.router.add_get("/jwks", self.serve_jwks)
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/user", self.user)
        app.router.add_get("/user/emails", self.user_emails)
        return app

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeOAuthProvider:
        self._server = LiveServer(self.app(), port=self.port).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeOAuthProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
