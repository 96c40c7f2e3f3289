"""The account service every auth plugin shares, one per application.

Built by the ``jwt`` plugin in ``swain_startup`` and provided on the runtime
as the :data:`AUTH` service; the other credential plugins declare
``requires = ("jwt",)`` and get it there.  The rate limiter is a service of
its own (:data:`LIMITER`, from the ``rate_limit`` plugin), which the account
service consults when it is there.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import logging
import random
import secrets
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from aiohttp import web

from swain.core import (
    RUNTIME,
    ApiError,
    Config,
    Conflict,
    Detail,
    EmailMessage,
    Identity,
    Runtime,
    ServiceKey,
    Unauthorized,
    ValidationFailed,
    invalid,
)
from swain.core.codec import parse_value
from swain.core.invalidation import MISSING, TimedCache, Watch
from swain.plugins.mapping import MappedCard, Store, utcnow

from .passwords import Passwords
from .smtp import Mailer
from .tokens import TokenSigner

log = logging.getLogger("swain")
#: most seconds background work waits before it starts (see Background)
_JITTER = 0.05

INVALID_LOGIN = "invalid email or password"
INVALID_USERNAME_LOGIN = "invalid username or password"
INVALID_REFRESH = "invalid refresh token"
#: A session refresh token is ``<session id>.<base64url(nonce + tag)>``: the nonce
#: is the secret (stored only as a hash), the tag an HMAC of the session id and
#: nonce, so a token the server never issued is refused before any row is read.
_NONCE_BYTES = 32
_TAG_BYTES = 16
#: Columns signup's additional_data can never set, whatever they are called.
PROTECTED_NAMES = frozenset({"role", "roles", "is_admin", "isadmin", "admin", "is_superuser",
                             "superuser", "is_staff", "permissions", "permission", "tenant",
                             "tenant_id"})


#: user card roles that signup's additional_data may name instead of their columns
SIGNUP_ROLES = ("firstname", "username")


def _role_name(key: str) -> str:
    """``first_name``, ``firstName``, ``first-name`` → ``firstname``."""
    return "".join(char for char in key.lower() if char.isalnum())


#: what names the account at login: ``email``, ``username`` (with ``[mapping.user]
#: username``), or ``either`` for a form's or HTTP Basic's single ``username`` field
LoginField = Literal["email", "username", "either"]


class RateLimiter(Protocol):
    async def hit(self, request: web.Request, action: str, account: str | None) -> None:
        """Count one attempt; raise ``RateLimited`` (429 with Retry-After) when over."""

    async def hit_user(self, action: str, user_id: object, name: str) -> None:
        """Count one attempt against the account found for ``name`` (``None``: none)."""


def token_hash(token: str) -> str:
    """Stored form of a random token: SHA-256 is enough for 256-bit random values."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass
class AuthService:
    config: Config
    runtime: Runtime
    cards: Mapping[str, MappedCard]
    signer: TokenSigner
    passwords: Passwords
    store: Store = field(init=False)
    _session_key: bytes = field(init=False, repr=False)
    #: sends the emails of private signups (``None`` without an email transport)
    mailer: Mailer | None = None
    #: user id -> their identity, or ``None`` for an inactive or missing user
    _active: TimedCache[Any, Identity | None] = field(init=False)
    #: work done after answering (private signups), awaited at shutdown
    background: Background = field(default_factory=lambda: Background())

    def __post_init__(self) -> None:
        self.store = Store(self.runtime, self.cards)
        self._session_key = self.signer.derive_key("refresh-session")
        self._active = TimedCache(float(self.config.auth.identity_cache))

    # -- settings ---------------------------------------------------------

    @property
    def access_expiry(self) -> float:
        return float(self.config.auth.access_token_expiry)

    @property
    def refresh_expiry(self) -> float:
        return float(self.config.auth.refresh_token_expiry)

    @property
    def stateful_sessions(self) -> bool:
        return "session" in self.cards

    # -- users -------------------------------------------------------------

    def user_roles(self) -> list[str]:
        return [r for r in ("id", "email", "password", "isactive", "firstname")
                if self.cards["user"].has(r)]

    def visible_user_columns(self) -> list[str]:
        table, _ = self.store.table("user")
        return [c.name for c in table.visible_columns]

    def user_id(self, text: str) -> Any:
        """A token's ``sub`` back as the id column's type."""
        column = self.store.column("user", "id")
        try:
            return parse_value(column, text, "sub", from_text=True)
        except ValidationFailed:
            raise Unauthorized("invalid token") from None

    async def find_by_email(self, email: str) -> dict[str, Any] | None:
        return await self.store.fetch_one("user", [("email", "ieq", email.strip())],
                                          self.user_roles())

    def login_field(self, login: str, field: LoginField) -> LoginField:
        """``email`` or ``username``: an ``either`` value is an email when it has an
        ``@`` (so a username chosen to look like someone's address cannot shadow
        it), a username otherwise, where one is mapped."""
        if field == "either":
            has_username = self.cards["user"].has("username")
            return "username" if has_username and "@" not in login else "email"
        return field

    def login_name(self, body: Mapping[str, Any]) -> tuple[object, LoginField]:
        """The account named by a ``/auth/login`` body: its ``email`` or ``username``."""
        if "username" not in body:
            return body.get("email"), "email"
        if "email" in body:
            raise invalid("username", "give either email or username, not both")
        if not self.cards["user"].has("username"):
            raise invalid("username", "login by username needs [mapping.user] username; give "
                                      "email")
        return body.get("username"), "username"

    async def find_by_id(self, user_id: Any, conn: Any = None) -> dict[str, Any] | None:
        tenant = self._tenant_column()
        return await self.store.fetch_one("user", [("id", "eq", user_id)], self.user_roles(),
                                          columns=[tenant] if tenant else (), conn=conn)

    async def public_user(self, user_id: Any) -> dict[str, Any]:
        row = await self.store.fetch_one("user", [("id", "eq", user_id)], [],
                                         columns=self.visible_user_columns())
        if row is None:
            raise Unauthorized("the account no longer exists")
        return dict(row.get("_columns", {}))

    def is_active(self, user: Mapping[str, Any]) -> bool:
        if not self.cards["user"].has("isactive"):
            return True
        return bool(user.get("isactive"))

    @staticmethod
    def password_version(user: Mapping[str, Any]) -> str:
        """Changes whenever the password does: ties stateless refresh tokens to it."""
        return token_hash(str(user.get("password") or ""))[:16]

    def _tenant_column(self) -> str | None:
        """The user table's tenant column when tenant isolation names one."""
        rls = self.config.section("rls")
        field_name = rls.get("tenant_field")
        if not rls.get("enabled") or not field_name:
            return None
        table, _ = self.store.table("user")
        return field_name if table.column(field_name) is not None else None

    def tenant_of(self, user: Mapping[str, Any]) -> Any:
        """The caller's tenant: the user's own id when the tenant table
        is the user table, else the tenant column's value on the user row."""
        rls = self.config.section("rls")
        if not rls.get("enabled"):
            return None
        if rls.get("tenant_table") == self.cards["user"].table:
            return user.get("id")
        column = self._tenant_column()
        return user.get("_columns", {}).get(column) if column else None

    def identity(self, user: Mapping[str, Any], provider: str,
                 claims: Mapping[str, Any] | None = None) -> Identity:
        return Identity(user_id=user["id"], provider=provider, email=user.get("email"),
                        tenant=self.tenant_of(user), claims=dict(claims or {}))

    async def active_identity(self, user_id: Any, provider: str,
                              claims: Mapping[str, Any] | None = None) -> Identity:
        """The identity of an active user, checked at most every ``identity_cache`` seconds,
        so a deactivated user is refused within that time (and no query per request)."""
        identity = self._active.fresh(user_id)
        if identity is MISSING:
            since = self._active.epoch
            user = await self.find_by_id(user_id)
            identity = self.identity(user, provider) if user and self.is_active(user) else None
            self._active.put(user_id, identity, since)
        if identity is None:
            raise Unauthorized("the account is inactive or no longer exists")
        return Identity(user_id=identity.user_id, provider=provider, email=identity.email,
                        tenant=identity.tenant, claims=dict(claims or {}))

    def invalidate(self, key: str | None) -> None:
        """Subscriber of the ``user`` topic: forget the cached identity of the user
        whose id reads as ``key`` (every user's for ``None``)."""
        self._active.forget(key, lambda user_id, _identity: user_id)


    # -- credentials ----------------------------------------------------------

    async def check_password(self, login: object, password: object,
                             field: LoginField = "email") -> dict[str, Any]:
        """The active user with this email (or username) and password, or the one 401.

        Unknown account, wrong password, inactive account and a hash of any
        format take the same time (see :class:`~.passwords.Pace`) and give the
        same answer.  A verified hash the passwords plugin wants replaced (an
        older format, weaker parameters) is re-hashed with argon2id.
        """
        if not isinstance(login, str) or not isinstance(password, str) or not login.strip() \
                or not login.isprintable():
            raise Unauthorized(INVALID_LOGIN)
        field = self.login_field(login, field)
        refusal = INVALID_USERNAME_LOGIN if field == "username" else INVALID_LOGIN
        if not self.passwords.acceptable_length(password):
            # Never valid, and hashing it would be the denial-of-service lever.
            raise Unauthorized(refusal)
        if field == "username":
            user = await self.store.fetch_one("user", [("username", "eq", login)],
                                              self.user_roles())
        else:
            user = await self.find_by_email(login)
        limiter = self.runtime.services.find(LIMITER)
        if limiter is not None:  # one counter per account, however it was named
            await limiter.hit_user("login", user["id"] if user else None, login)
        ok, rehash = await self.passwords.verify(user.get("password") if user else None, password)
        if user is None or not ok or not self.is_active(user):
            raise Unauthorized(refusal)
        if rehash:
            new_hash = await self.passwords.hash(password)
            # Only over the hash just verified: a password changed meanwhile stays.
            changed = await self.store.update(
                "user", [("id", "eq", user["id"]), ("password", "eq", user["password"])],
                {"password": new_hash})
            if changed == 1:
                user["password"] = new_hash
        return user

    async def limit(self, request: web.Request, action: str, account: str | None) -> None:
        limiter = self.runtime.services.find(LIMITER)
        if limiter is not None:
            await limiter.hit(request, action, account.strip().lower() if account else None)

    # -- token pairs -------------------------------------------------------------

    def access_token(self, user: Mapping[str, Any]) -> str:
        return self.signer.issue(user["id"], "access", self.access_expiry)

    async def issue_pair(self, user: Mapping[str, Any]) -> dict[str, Any]:
        if self.stateful_sessions:
            nonce = secrets.token_bytes(_NONCE_BYTES)
            now = utcnow()
            values: dict[str, Any] = {"userid": user["id"],
                                      "refreshtoken": self._nonce_hash(nonce, user),
                                      "expiresat": _later(now, self.refresh_expiry)}
            if self.cards["session"].has("lastused"):
                values["lastused"] = now
            session_id = await self.store.insert("session", values)
            refresh = self._session_token(session_id, nonce)
        else:
            refresh = self.signer.issue(user["id"], "refresh", self.refresh_expiry,
                                        pv=self.password_version(user))
        return {"access_token": self.access_token(user), "refresh_token": refresh,
                "token_type": "bearer", "expires_in": int(self.access_expiry)}

    def _session_tag(self, session_id: Any, nonce: bytes) -> bytes:
        message = str(session_id).encode() + b"." + nonce
        return hmac.new(self._session_key, message, hashlib.sha256).digest()[:_TAG_BYTES]

    def _session_token(self, session_id: Any, nonce: bytes) -> str:
        secret = base64.urlsafe_b64encode(nonce + self._session_tag(session_id, nonce))
        return f"{session_id}.{secret.rstrip(b'=').decode()}"

    async def _session(self, token: str) -> tuple[Any, dict[str, Any] | None, bytes]:
        """(session id, session row, the token's nonce) for a token this server issued;
        401 for anything else, before a row is read or touched."""
        session_text, dot, secret = token.rpartition(".")
        if not dot or not session_text or not secret or len(token) > 512:
            raise Unauthorized(INVALID_REFRESH)
        try:
            raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        except (binascii.Error, ValueError):
            raise Unauthorized(INVALID_REFRESH) from None
        nonce, tag = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        column = self.store.column("session", "id")
        try:
            session_id = parse_value(column, session_text, "refresh_token", from_text=True)
        except ValidationFailed:
            raise Unauthorized(INVALID_REFRESH) from None
        if len(raw) != _NONCE_BYTES + _TAG_BYTES or \
                not hmac.compare_digest(tag, self._session_tag(session_text, nonce)):
            raise Unauthorized(INVALID_REFRESH)
        row = await self.store.fetch_one("session", [("id", "eq", session_id)])
        return session_id, row, nonce

    def _nonce_hash(self, nonce: bytes, user: Mapping[str, Any]) -> str:
        """What a session stores of its refresh token: bound to the user's password as
        it is, so that however the password changes, the session ends with it."""
        return hashlib.sha256(nonce + self.password_version(user).encode()).hexdigest()

    async def refresh(self, token: object) -> dict[str, Any]:
        if not isinstance(token, str) or not token:
            raise invalid("refresh_token", "required")
        if not self.stateful_sessions:
            claims = self.signer.verify(token, "refresh")
            user = await self.find_by_id(self.user_id(claims["sub"]))
            if user is None or not self.is_active(user) or \
                    not same(claims.get("pv", ""), self.password_version(user)):
                raise Unauthorized(INVALID_REFRESH)
            return await self.issue_pair(user)
        session_id, row, nonce = await self._session(token)
        if row is None:
            raise Unauthorized(INVALID_REFRESH)
        user = await self.find_by_id(row["userid"])
        if user is None or not self.is_active(user):
            raise Unauthorized("the account is inactive or no longer exists")
        if not same(str(row.get("refreshtoken") or ""), self._nonce_hash(nonce, user)):
            # A token this server issued for this session, since rotated (assume it
            # was stolen: the thief's copy dies as well), or the password changed.
            await self.store.delete("session", [("id", "eq", session_id)])
            raise Unauthorized("refresh token reused, or the password changed since; the "
                               "session has been revoked")
        expires = self.store.decode_time("session", "expiresat", row.get("expiresat"))
        if expires is None or expires <= utcnow():
            await self.store.delete("session", [("id", "eq", session_id)])
            raise Unauthorized("refresh token expired")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        values: dict[str, Any] = {"refreshtoken": self._nonce_hash(nonce, user)}
        if self.cards["session"].has("lastused"):
            values["lastused"] = utcnow()
        # Compare-and-swap: of concurrent refreshes with one token, exactly one
        # rotates it; the others see a rotated token, which revokes the session.
        changed = await self.store.update(
            "session", [("id", "eq", session_id), ("refreshtoken", "eq", row["refreshtoken"])],
            values)
        if changed != 1:
            await self.store.delete("session", [("id", "eq", session_id)])
            raise Unauthorized("refresh token reused; the session has been revoked")
        return {"access_token": self.access_token(user),
                "refresh_token": self._session_token(session_id, nonce),
                "token_type": "bearer", "expires_in": int(self.access_expiry)}

    async def logout(self, token: object) -> None:
        if not isinstance(token, str) or not token:
            raise invalid("refresh_token", "required")
        if not self.stateful_sessions:
            self.signer.verify(token, "refresh")  # stateless: the client forgets the tokens
            return
        session_id, row, _nonce = await self._session(token)
        if row is None:
            raise Unauthorized(INVALID_REFRESH)
        # A rotated token (really issued, see _session) also ends the session.
        await self.store.delete("session", [("id", "eq", session_id)])

    async def revoke_sessions(self, user_id: Any, conn: Any = None) -> None:
        """End the user's sessions (then, once committed, call :meth:`changed`)."""
        if self.stateful_sessions:
            await self.store.delete("session", [("userid", "eq", user_id)], conn=conn)

    async def changed(self, user_id: Any) -> None:
        """The account changed and the change committed: every instance forgets what
        it cached about it (its identity, its verified Basic passwords)."""
        await self.runtime.invalidations.publish(USER_TOPIC, user_id)

    # -- signup -------------------------------------------------------------------

    def signup_values(self, body: Mapping[str, Any]
                      ) -> tuple[str, str, dict[str, Any], bool | None]:
        """Validated (email, password, extra columns, requested active flag)."""
        allowed_top = {"email", "password", "is_active", "additional_data"}
        for key in body:
            if key not in allowed_top:
                raise invalid(key, f"unknown field (allowed: {', '.join(sorted(allowed_top))})")
        email = body.get("email")
        if not isinstance(email, str) or "@" not in email.strip() or len(email) > 254:
            raise invalid("email", "expected an email address")
        password = self.passwords.check_policy(body.get("password"), "password")
        active = body.get("is_active")
        if active is not None:
            if not isinstance(active, bool):
                raise invalid("is_active", "expected true or false")
            self.check_requested_active(active)
        extra = self.additional_data(body.get("additional_data"))
        return email.strip(), password, extra, active

    def check_requested_active(self, active: bool) -> None:
        """Signup's ``is_active`` may ask for what the policy gives anyway, or for less
        (an inactive account); asking to be active where new accounts start inactive
        needs ``auth.signup_allow_is_active``."""
        auth = self.config.auth
        if not self.cards["user"].has("isactive"):
            if not active:
                raise invalid("is_active", "every account is active: the user table has no "
                                           "active flag ([mapping.user] isactive)")
            return
        if active and not auth.signup_active and not auth.signup_allow_is_active:
            raise invalid("is_active", "new accounts start inactive (auth.signup_active = "
                                       "false), and signup may not activate them "
                                       "(auth.signup_allow_is_active = false)")

    def additional_data(self, data: object) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise invalid("additional_data", "expected an object of column values")
        table, _ = self.store.table("user")
        card = self.cards["user"]
        protected = {card.column(r) for r in ("id", "email", "password", "isactive")
                     if card.has(r)}
        protected |= set(self.config.auth.signup_protected_columns)
        tenant_field = self.config.section("rls").get("tenant_field")
        if tenant_field:
            protected.add(tenant_field)
        allowed = [c.name for c in table.visible_columns if not c.generated and
                   c.name not in protected and c.name.lower() not in PROTECTED_NAMES]
        # The card's own names reach the columns they are mapped to: "first_name"
        # (or "firstname", "firstName") fills [mapping.user] firstname's column.
        roles = {role: card.column(role) for role in SIGNUP_ROLES if card.has(role)}
        values: dict[str, Any] = {}
        errors = []
        for raw_key, value in data.items():
            key = str(raw_key)  # JSON object keys are strings already
            path = f"additional_data.{key}"
            name = key if table.column(key) is not None else roles.get(_role_name(key), key)
            column = table.column(name)
            if column is None or name not in allowed:
                names = ", ".join(allowed) or "none"
                errors.append(invalid(path, f"not allowed (allowed: {names})"))
                continue
            if name in values:
                errors.append(invalid(path, f"column {name!r} is given twice"))
                continue
            try:
                values[name] = parse_value(column, value, path)
            except ValidationFailed as exc:
                errors.append(exc)
        if errors:
            raise ValidationFailed(errors[0].message if len(errors) == 1 else
                                   f"{len(errors)} invalid values",
                                   [d for e in errors for d in e.details])
        return values

    @property
    def private_signup(self) -> bool:
        """Whether signup answers the same whether or not the address has an account
        (``auth.signup_answer = "accepted"``), telling the owner by email."""
        return bool(self.config.auth.signup_answer == "accepted")

    async def signup(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Create the account and answer with it and its tokens; 409 for a taken
        address (``signup_answer = "tokens"``, which reveals the address)."""
        email, password, extra, active = self.signup_values(body)
        if await self.find_by_email(email) is not None:
            raise Conflict("an account with this email already exists",
                           [Detail("email", "already registered")])
        user = await self._create(email, password, extra, active)
        tokens = await self.issue_pair(user) if self.is_active(user) else {}
        return await self.public_user(user["id"]), tokens

    def signup_privately(self, body: Mapping[str, Any]) -> None:
        """Validate the signup, then do the rest after answering: whether the address
        has an account shows neither in the answer nor in its timing; the email
        says what happened."""
        email, password, extra, active = self.signup_values(body)
        self.background.spawn(self._signup_in_background(email, password, extra, active))

    async def _signup_in_background(self, email: str, password: str, extra: dict[str, Any],
                                    active: bool | None) -> None:
        name = self.config.project.name
        try:
            if await self.find_by_email(email) is not None:
                text = (f"Someone, perhaps you, tried to sign up to {name} with this address, "
                        "which already has an account.\n\nIf it was you, log in instead; if "
                        "you forgot your password, ask for a password reset.  If it was not "
                        "you, ignore this email: nothing changed.")
                await self._tell(email, f"Your {name} account", text)
                return
            user = await self._create(email, password, extra, active)
        except Exception as exc:
            reason = self.runtime.dialect.classify_error(exc) if not isinstance(exc, ApiError) \
                else exc
            if reason is None:
                log.error("signup failed: %s", self.runtime.dialect.describe_error(exc) or
                          type(exc).__name__)
            await self._tell(email, f"Your {name} account",
                             f"We could not create your {name} account"
                             + (f": {reason.message}." if reason is not None else ".")
                             + "\n\nYou may try again later.")
            return
        ready = "is ready: log in with this address" if self.is_active(user) else \
            "was created; it can be used once it is activated"
        await self._tell(email, f"Welcome to {name}", f"Your {name} account {ready}.")

    async def _tell(self, address: str, subject: str, text: str) -> None:
        if self.mailer is not None:
            await self.mailer.deliver(EmailMessage(to=address, subject=subject, text=text))

    async def _create(self, email: str, password: str, extra: dict[str, Any],
                      active: bool | None) -> dict[str, Any]:
        card = self.cards["user"]
        values: dict[str, Any] = {"email": email.lower(),
                                  "password": await self.passwords.hash(password)}
        if card.has("isactive"):
            values["isactive"] = bool(self.config.auth.signup_active) if active is None else active
        user_id = await self.store.insert("user", values, extra=extra)
        if user_id is None:
            found = await self.find_by_email(email)
            user_id = found["id"] if found else None
        user = await self.find_by_id(user_id)
        assert user is not None
        return user


class Background:
    """Work done after answering a request, kept until done (and awaited at
    shutdown, so none is lost).

    Each piece starts after a short random delay: the work differs with what
    it finds (an account or none), and it shares the event loop with the
    requests that follow, so it must not land right behind the request that
    caused it, where its cost could be timed."""

    def __init__(self, jitter: float = _JITTER) -> None:
        self.jitter = jitter
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._later(work))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _later(self, work: Coroutine[Any, Any, Any]) -> Any:
        await asyncio.sleep(random.uniform(0, self.jitter))
        return await work

    async def drain(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def _later(now: dt.datetime, seconds: float) -> dt.datetime:
    return now + dt.timedelta(seconds=seconds)


#: invalidations of a user's cached identity and credentials (key: the user id)
USER_TOPIC = "user"
#: invalidations of cached API keys (key: the key row's id)
API_KEY_TOPIC = "api_key"

AUTH: ServiceKey[AuthService] = ServiceKey("swain.auth.service", provider="jwt")
LIMITER: ServiceKey[RateLimiter] = ServiceKey("swain.auth.rate_limiter", provider="rate_limit")


def user_watch(config: Config, cards: Mapping[str, MappedCard]) -> Watch:
    """The user table: a change to an account's id, email, password, active flag or
    tenant makes what instances cached about it stale."""
    card = cards["user"]
    columns = [card.column(r) for r in ("id", "email", "password", "isactive") if card.has(r)]
    rls = config.section("rls")
    if rls.get("enabled") and rls.get("tenant_field"):
        columns.append(rls["tenant_field"])  # left out of triggers where the table lacks it
    return Watch(card.table, USER_TOPIC, card.column("id"), tuple(columns))


def accounts(request: web.Request) -> AuthService:
    """The application's account service."""
    return request.app[RUNTIME].services.get(AUTH)


def auth_active(config: Config) -> bool:
    """Auth plugins act only when auth is on and the user card is mapped."""
    return bool(config.auth.enabled) and config.section("mapping").get("user") is not None
