"""An example third-party swain plugin.

It shows what most plugins do: declare a config section, provide a service
on the per-app runtime at startup, add a route that uses it, authenticate
requests, and open/close a resource with the app.  It imports only
``swain.core``, keeps no module state and reads only its own ``[example]``
section.

::

    [example]
    greeting = "Hello"          # what GET /example/hello says
    token = "${EXAMPLE_TOKEN}"  # the X-Example-Token value that authenticates
    user_id = "example-user"    # the identity that token stands for
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Iterable, Mapping

from aiohttp import web

from swain.core import (
    IDENTITY,
    RUNTIME,
    Config,
    Identity,
    Runtime,
    ServiceKey,
    Setting,
    Unauthorized,
    hookimpl,
    json_response,
    public,
)
from swain.core.codec import dumps

#: app state belongs under typed keys; this one records the cleanup context's runs.
STARTED: web.AppKey[list[str]] = web.AppKey("swain_example_plugin.started")


class Greeter:
    """A service: what other code of this (or another) plugin asks for by its key."""

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    def greet(self, name: str) -> str:
        return f"{self.greeting}, {name}"


GREETER: ServiceKey[Greeter] = ServiceKey("swain_example_plugin.greeter", provider="example")


@hookimpl
def swain_config_sections() -> Mapping[str, Mapping[str, Setting]]:
    return {
        "example": {
            "greeting": Setting("str", "Hello", doc="what GET /example/hello says"),
            "token": Setting("str", None, secret=True, doc="X-Example-Token that authenticates"),
            "user_id": Setting("str", "example-user"),
        }
    }


@hookimpl
def swain_startup(runtime: Runtime) -> None:
    runtime.services.provide(GREETER, Greeter(runtime.config.example.greeting))


@public
async def hello(request: web.Request) -> web.Response:
    """A public route: works without credentials, says who called if anyone did."""
    greeter = request.app[RUNTIME].services.get(GREETER)
    identity = request.get(IDENTITY)
    body = {"message": greeter.greet(identity.user_id if identity else "stranger"),
            "started": request.app[STARTED]}
    return json_response(dumps(body))


@hookimpl
def swain_routes(config: Config) -> Iterable[web.RouteDef]:
    return [web.get("/example/hello", hello)]


class ExampleTokenProvider:
    """Turns ``X-Example-Token: <[example] token>`` into an identity."""

    name = "example_token"

    def __init__(self, token: str, user_id: str) -> None:
        self._token = token
        self._user_id = user_id

    async def authenticate(self, request: web.Request) -> Identity | None:
        presented = request.headers.get("X-Example-Token")
        if presented is None:
            return None  # not our kind of credential: let the next provider try
        if not hmac.compare_digest(presented.encode(), self._token.encode()):
            raise Unauthorized("invalid example token")
        return Identity(user_id=self._user_id, provider=self.name)


@hookimpl
def swain_auth_providers(config: Config) -> Iterable[ExampleTokenProvider]:
    # Without a token there is nothing to check; offering no provider keeps
    # "auth is on but nothing provides it" a startup error.
    if not config.example.token:
        return []
    return [ExampleTokenProvider(config.example.token, config.example.user_id)]


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    app[STARTED] = ["startup"]
    yield
    app[STARTED].append("shutdown")


@hookimpl
def swain_cleanup_ctx(config: Config) -> Iterable[object]:
    return [_lifecycle]
