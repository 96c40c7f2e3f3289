"""The relationship diagram of a schema snapshot, drawn here as SVG.

Tables are laid out on a grid in the order a walk along their foreign keys
meets them (related tables end up close together); each box lists the
columns with their type and key markers, and each foreign key is a curve
from its column to the table it references.  Every name is escaped; the
styling lives in the console's stylesheet (classes ``erd-*``).
"""

from __future__ import annotations

import math
from collections import deque
from html import escape

from swain.core import Schema, Table

WIDTH = 236
HEADER = 28
ROW = 19
MAX_ROWS = 14
GAP_X = 64
GAP_Y = 40
MARGIN = 16


def _order(schema: Schema) -> list[Table]:
    tables = sorted(schema.tables.values(), key=lambda t: t.key)
    neighbours: dict[str, set[str]] = {t.key: set() for t in tables}
    for table in tables:
        for fk in table.foreign_keys:
            if fk.target in neighbours and fk.target != table.key:
                neighbours[table.key].add(fk.target)
                neighbours[fk.target].add(table.key)
    seen: list[str] = []
    for start in sorted(neighbours, key=lambda k: (-len(neighbours[k]), k)):
        if start in seen:
            continue
        queue = deque([start])
        while queue:
            key = queue.popleft()
            if key in seen:
                continue
            seen.append(key)
            queue.extend(sorted(neighbours[key] - set(seen)))
    return [schema.tables[key] for key in seen]


def _label(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(schema: Schema) -> str:
    tables = _order(schema)
    if not tables:
        return ""
    columns = max(1, min(4, math.ceil(math.sqrt(len(tables)))))
    heights = {t.key: HEADER + ROW * (min(len(t.columns), MAX_ROWS)
                                      + (1 if len(t.columns) > MAX_ROWS else 0)) + 6
               for t in tables}
    positions: dict[str, tuple[float, float]] = {}
    row_heights: list[float] = []
    for index, table in enumerate(tables):
        row, col = divmod(index, columns)
        if col == 0:
            row_heights.append(0)
        row_heights[row] = max(row_heights[row], heights[table.key])
    for index, table in enumerate(tables):
        row, col = divmod(index, columns)
        y = MARGIN + sum(row_heights[:row]) + GAP_Y * row
        positions[table.key] = (MARGIN + col * (WIDTH + GAP_X), y)
    width = MARGIN * 2 + columns * WIDTH + (columns - 1) * GAP_X
    height = MARGIN * 2 + sum(row_heights) + GAP_Y * (len(row_heights) - 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="erd" viewBox="0 0 {width} '
             f'{height:.0f}" width="{width}" height="{height:.0f}" role="img" '
             f'aria-label="Relationship diagram of {len(tables)} tables">',
             '<defs><marker id="erd-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
             'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
             '<path d="M0,0 L10,5 L0,10 z" class="erd-arrowhead"/></marker></defs>']
    edges: list[str] = []
    for table in tables:
        x, y = positions[table.key]
        shown = table.columns[:MAX_ROWS]
        for fk in table.foreign_keys:
            if fk.target not in positions:
                continue
            index = next((i for i, c in enumerate(shown) if c.name == fk.columns[0]),
                         len(shown))
            sy = y + HEADER + ROW * index + ROW / 2
            tx, ty = positions[fk.target]
            ty += HEADER / 2
            if fk.target == table.key:
                sx = x + WIDTH
                path = f"M{sx},{sy} C{sx + 40},{sy} {sx + 40},{ty} {sx},{ty}"
            elif tx >= x + WIDTH:
                sx, ex = x + WIDTH, tx
                path = f"M{sx},{sy} C{sx + 40},{sy} {ex - 40},{ty} {ex},{ty}"
            elif tx + WIDTH <= x:
                sx, ex = x, tx + WIDTH
                path = f"M{sx},{sy} C{sx - 40},{sy} {ex + 40},{ty} {ex},{ty}"
            else:
                sx, ex = x + WIDTH, tx + WIDTH
                bend = max(sx, ex) + 36
                path = f"M{sx},{sy} C{bend},{sy} {bend},{ty} {ex},{ty}"
            title = escape(f"{table.key}({', '.join(fk.columns)}) → {fk.target}"
                           f"({', '.join(fk.target_columns)})")
            edges.append(f'<path class="erd-edge" d="{path}" marker-end="url(#erd-arrow)">'
                         f"<title>{title}</title></path>")
    parts += edges
    for table in tables:
        x, y = positions[table.key]
        fk_columns = {c for fk in table.foreign_keys for c in fk.columns}
        kind = "erd-view" if table.kind == "view" else "erd-table"
        parts.append(f'<g class="{kind}" transform="translate({x},{y:.0f})">'
                     f'<rect class="erd-box" width="{WIDTH}" height="{heights[table.key]}" '
                     'rx="6"/>'
                     f'<rect class="erd-head" width="{WIDTH}" height="{HEADER}" rx="6"/>'
                     f'<rect class="erd-head" y="{HEADER - 8}" width="{WIDTH}" height="8"/>'
                     f'<text class="erd-title" x="10" y="19">{escape(_label(table.key, 26))}'
                     f'{" (view)" if table.kind == "view" else ""}</text>')
        for i, column in enumerate(table.columns[:MAX_ROWS]):
            cy = HEADER + ROW * i + 14
            marks = ("PK " if column.name in table.primary_key else "") + \
                ("FK" if column.name in fk_columns else "")
            cls = "erd-col erd-key" if column.name in table.primary_key else "erd-col"
            parts.append(f'<text class="{cls}" x="10" y="{cy}">{escape(_label(column.name, 18))}'
                         f'{"" if column.nullable else " *"}</text>'
                         f'<text class="erd-type" x="{WIDTH - 10}" y="{cy}" text-anchor="end">'
                         f'{escape(_label(column.sql_type.lower(), 14))}</text>')
            if marks:
                parts.append(f'<text class="erd-mark" x="{WIDTH - 112}" y="{cy}">'
                             f"{marks.strip()}</text>")
        if len(table.columns) > MAX_ROWS:
            parts.append(f'<text class="erd-more" x="10" y="{HEADER + ROW * MAX_ROWS + 14}">'
                         f"… {len(table.columns) - MAX_ROWS} more</text>")
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
