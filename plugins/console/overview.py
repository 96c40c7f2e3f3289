"""What pages share about a project: its connections, the chosen stage, the
schema to pick from, and how far along the eight steps it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from swain.core import Schema

from . import database, projects
from .context import CONSOLE, Console
from .store import ConnectionRow, Deployment, Project, Snapshot

STEPS = (
    ("project", "Project", ""),
    ("connections", "Connections", "connections"),
    ("schema", "Schema", "schema"),
    ("auth", "Authentication", "auth"),
    ("mapping", "User mapping", "mapping"),
    ("social", "Social login", "social"),
    ("authorization", "Authorization", "authorization"),
    ("deploy", "Deploy", "deploy"),
)


@dataclass
class Overview:
    project: Project
    connections: list[ConnectionRow]
    current: ConnectionRow | None
    snapshot: Snapshot | None
    schema: Schema | None
    secrets: set[str]
    deployments: dict[int, Deployment] = field(default_factory=dict)
    done: dict[str, bool] = field(default_factory=dict)

    def setting(self, path: str, default: Any = None) -> Any:
        node: Any = self.project.settings
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def link(self, slug: str) -> str:
        base = f"/projects/{self.project.id}" + (f"/{slug}" if slug else "")
        if slug and self.current is not None:
            return f"{base}?connection={self.current.id}"
        return base


def _chosen(request: web.Request, rows: list[ConnectionRow]) -> ConnectionRow | None:
    wanted = request.query.get("connection", "")
    for row in rows:
        if wanted.isdigit() and row.id == int(wanted):
            return row
    return rows[0] if rows else None


async def load(request: web.Request) -> Overview:
    c: Console = request.app[CONSOLE]
    raw = request.match_info["project"]
    if not raw.isdigit():
        raise web.HTTPNotFound()
    found = await projects.project(c, int(raw))
    rows = await c.store.connections(found.id)
    current = _chosen(request, rows)
    best = await database.latest(c, found, current) if current is not None else None
    if best is None and rows:
        best = await database.latest(c, found)
    snapshot = best[1] if best else None
    schema = Schema.from_json(snapshot.schema) if snapshot else None
    view = Overview(found, rows, current, snapshot, schema, await projects.secret_names(c, found))
    for row in rows:
        deployment = await c.store.deployment(row.id)
        if deployment is not None:
            view.deployments[row.id] = deployment
    mapping = view.setting("mapping") or {}
    view.done = {
        "project": True,
        "connections": bool(rows),
        "schema": snapshot is not None,
        "auth": "auth.jwt_secret" in view.secrets or view.setting("auth.enabled") is False,
        "mapping": "user" in mapping,
        "social": any(isinstance(section, dict) and section.get("client_id")
                      for section in (view.setting("social") or {}).values()),
        "authorization": bool(view.setting("rbac.enabled")),
        "deploy": any(d.desired == "running" for d in view.deployments.values()),
    }
    return view
