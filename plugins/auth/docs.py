"""OpenAPI for the auth endpoints and the four security schemes (bearer JWT,
API key, HTTP Basic, OAuth2 password flow on ``/auth/token``).

Each credential plugin adds its own scheme to the document's alternatives
(``security`` at the top level) and its own paths; the auth endpoints that
need no credential say ``security: []``.  Swagger UI's Authorize then offers
every enabled scheme.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec

TAG = "Authentication"
_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(name: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {_JSON: {"schema": _ref(name)}}}


def _ok(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": _ref(name)}}}


def _error(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


RATE_LIMITED = {"description": "Too many attempts; retry after `Retry-After` seconds.",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                "content": {_JSON: {"schema": _ref("Error")}}}


def add_scheme(spec: APISpec, name: str, scheme: dict[str, Any]) -> None:
    spec.components.security_scheme(name, scheme)
    alternatives = spec.options.setdefault("security", [])
    alternatives.append({name: []})


def _operation(op_id: str, summary: str, *, public: bool, body: dict[str, Any] | None,
               responses: dict[Any, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": op_id, "summary": summary, "tags": [TAG],
                                 "responses": responses}
    if public:
        operation["security"] = []
    if body is not None:
        operation["requestBody"] = body
    return operation


def add_account_paths(spec: APISpec, user_schema: dict[str, Any], jwks: bool,
                      username: bool = False, private_signup: bool = True) -> None:
    """Signup, login, token, refresh, logout and me (the jwt plugin); ``username``
    when the user card maps one, so login takes it instead of the email;
    ``private_signup`` when signup answers 202 whatever the address."""
    spec.tag({"name": TAG, "description": "Accounts, tokens and credentials."})
    spec.components.schema("TokenPair", {
        "type": "object", "required": ["access_token", "refresh_token", "token_type",
                                       "expires_in"],
        "properties": {"access_token": {"type": "string"},
                       "refresh_token": {"type": "string"},
                       "token_type": {"type": "string", "enum": ["bearer"]},
                       "expires_in": {"type": "integer"}}})
    spec.components.schema("AuthUser", user_schema)
    spec.components.schema("SignupRequest", {
        "type": "object", "required": ["email", "password"],
        "properties": {"email": {"type": "string", "format": "email"},
                       "password": {"type": "string", "format": "password"},
                       "is_active": {"type": "boolean"},
                       "additional_data": {"type": "object", "additionalProperties": True}}})
    spec.components.schema("SignupResult", {"allOf": [
        _ref("TokenPair"),
        {"type": "object", "properties": {"user": _ref("AuthUser")}}]})
    login: dict[str, Any] = {"email": {"type": "string", "format": "email"},
                             "password": {"type": "string", "format": "password"}}
    if username:
        login["username"] = {"type": "string", "description": "instead of email"}
    spec.components.schema("LoginRequest", {
        "type": "object", "required": ["password"] if username else ["email", "password"],
        "properties": login})
    spec.components.schema("RefreshRequest", {
        "type": "object", "required": ["refresh_token"],
        "properties": {"refresh_token": {"type": "string"}}})
    spec.components.schema("Me", {
        "type": "object",
        "properties": {"user": _ref("AuthUser"),
                       "roles": {"type": "array", "items": {"type": "string"}},
                       "permissions": {"type": "array", "items": {"type": "string"}},
                       "tenant": {"nullable": True}, "provider": {"type": "string"}}})
    if private_signup:
        spec.components.schema("Accepted", {
            "type": "object", "required": ["status", "message"],
            "properties": {"status": {"type": "string", "enum": ["accepted"]},
                           "message": {"type": "string"}}})
        created: dict[Any, Any] = {202: _ok("Accepted", "The same answer whether or not the "
                                                       "address has an account; an email tells "
                                                       "the owner what happened.")}
    else:
        created = {201: _ok("SignupResult", "The user (no secrets) and tokens."),
                   409: _error("Conflict")}
    signup = _operation("authSignup", "Create an account", public=True,
                        body=_body("SignupRequest"),
                        responses={**created, 400: _error("BadRequest"),
                                   403: _error("Forbidden"), 422: _error("ValidationError"),
                                   429: RATE_LIMITED})
    spec.path(path="/auth/signup", operations={"post": signup})
    spec.path(path="/auth/register", operations={"post": {**signup, "operationId": "authRegister",
                                                          "summary": "Create an account (alias)"}})
    spec.path(path="/auth/login", operations={"post": _operation(
        "authLogin", "Log in with email (or username) and password" if username else
        "Log in with email and password", public=True, body=_body("LoginRequest"),
        responses={200: _ok("TokenPair", "A token pair."), 400: _error("BadRequest"),
                   401: _error("Unauthorized"), 422: _error("ValidationError"),
                   429: RATE_LIMITED})})
    spec.path(path="/auth/token", operations={"post": _operation(
        "authToken", "OAuth2 password grant (form-encoded)", public=True,
        body={"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["username", "password"],
            "properties": {"grant_type": {"type": "string", "enum": ["password"]},
                           "username": {"type": "string", "description": (
                               "the email, or a username where the user table has one")},
                           "password": {"type": "string", "format": "password"},
                           "scope": {"type": "string"}}}}}},
        responses={200: _ok("TokenPair", "A token pair."), 400: _error("BadRequest"),
                   401: _error("Unauthorized"), 429: RATE_LIMITED})})
    spec.path(path="/auth/refresh", operations={"post": _operation(
        "authRefresh", "Exchange a refresh token for a new pair", public=True,
        body=_body("RefreshRequest"),
        responses={200: _ok("TokenPair", "A new pair; the old refresh token stops working."),
                   400: _error("BadRequest"), 401: _error("Unauthorized"),
                   422: _error("ValidationError"), 429: RATE_LIMITED})})
    spec.path(path="/auth/logout", operations={"post": _operation(
        "authLogout", "End the session of a refresh token", public=True,
        body=_body("RefreshRequest"),
        responses={204: {"description": "The session is revoked."},
                   400: _error("BadRequest"), 401: _error("Unauthorized"),
                   422: _error("ValidationError"), 429: RATE_LIMITED})})
    spec.path(path="/auth/me", operations={"get": _operation(
        "authMe", "The caller's user, roles, permissions and tenant", public=False, body=None,
        responses={200: _ok("Me", "The caller."), 401: _error("Unauthorized")})})
    if jwks:
        spec.path(path="/.well-known/jwks.json", operations={"get": _operation(
            "authJwks", "Public keys that verify access tokens", public=True, body=None,
            responses={200: {"description": "A JSON Web Key Set.",
                             "content": {_JSON: {"schema": {"type": "object"}}}}})})


def add_api_key_paths(spec: APISpec) -> None:
    spec.components.schema("ApiKeyCreate", {"type": "object",
                                            "properties": {"name": {"type": "string"}}})
    spec.components.schema("ApiKey", {
        "type": "object", "properties": {
            "id": {}, "name": {"type": "string", "nullable": True},
            "created_at": {"type": "string", "format": "date-time", "nullable": True},
            "revoked_at": {"type": "string", "format": "date-time", "nullable": True}}})
    spec.components.schema("ApiKeyCreated", {"allOf": [
        _ref("ApiKey"), {"type": "object", "required": ["key"],
                         "properties": {"key": {"type": "string",
                                                "description": "Shown only this once."}}}]})
    spec.components.schema("ApiKeyList", {"type": "object", "properties": {
        "data": {"type": "array", "items": _ref("ApiKey")}}})
    spec.path(path="/auth/api_keys", operations={
        "post": _operation("createApiKey", "Create an API key (shown once)", public=False,
                           body=_body("ApiKeyCreate", required=False),
                           responses={201: _ok("ApiKeyCreated", "The new key."),
                                      401: _error("Unauthorized"), 403: _error("Forbidden")}),
        "get": _operation("listApiKeys", "The caller's API keys (without the keys)",
                          public=False, body=None,
                          responses={200: _ok("ApiKeyList", "The keys."),
                                     401: _error("Unauthorized")})})
    spec.path(path="/auth/api_keys/{id}", operations={"delete": {
        **_operation("revokeApiKey", "Revoke an API key", public=False, body=None,
                     responses={200: {"description": "Revoked.", "content": {_JSON: {"schema": {
                         "type": "object"}}}},
                                401: _error("Unauthorized"), 404: _error("NotFound")}),
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string"}}]}})


def add_reset_paths(spec: APISpec) -> None:
    spec.components.schema("PasswordResetRequest", {
        "type": "object", "required": ["email"],
        "properties": {"email": {"type": "string", "format": "email"}}})
    spec.components.schema("PasswordResetConfirm", {
        "type": "object", "required": ["token", "new_password"],
        "properties": {"token": {"type": "string"},
                       "new_password": {"type": "string", "format": "password"}}})
    accepted = {202: {"description": "Accepted, whether or not the address exists.",
                      "content": {_JSON: {"schema": {"type": "object"}}}},
                422: _error("ValidationError"), 429: RATE_LIMITED}
    request = _operation("requestPasswordReset", "Email a password reset link", public=True,
                         body=_body("PasswordResetRequest"),
                         responses={**accepted, 400: _error("BadRequest")})
    spec.path(path="/auth/password_reset", operations={"post": request})
    spec.path(path="/auth/request-reset", operations={"post": {
        **request, "operationId": "requestReset", "summary": "Email a reset link (alias)"}})
    confirm = _operation("confirmPasswordReset", "Set a new password with a reset token",
                         public=True, body=_body("PasswordResetConfirm"),
                         responses={200: {"description": "The password is changed.",
                                          "content": {_JSON: {"schema": {"type": "object"}}}},
                                    400: _error("BadRequest"), 422: _error("ValidationError"),
                                    429: RATE_LIMITED})
    spec.path(path="/auth/password_reset/confirm", operations={"post": confirm})
    spec.path(path="/auth/confirm-reset", operations={"post": {
        **confirm, "operationId": "confirmReset", "summary": "Set a new password (alias)"}})
