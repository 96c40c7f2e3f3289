"""The code and JSON of the product document's SDK sections, read from the document.

``seed_document.txt`` is the product document swain was designed from, byte for
byte.  It is plain text: a snippet is not fenced, so it is told apart thus:

* a Python or TypeScript snippet follows a line that starts with ``Python`` or
  ``TypeScript`` (``Python — request a filtered page of users.``) and runs until
  the next line that starts with a capital letter or with something that is not
  ASCII (prose, a heading, an emoji title): no line of code in the document does;
* a JSON payload starts at a line ``{`` outside a snippet and ends where its
  braces balance (its ``//`` comments are not JSON and are dropped when sent).

Leading ``pip install`` / ``npm install`` lines of a snippet are shell commands.

The text has lost the indentation of the web page it was taken from, which Python
cannot do without: :data:`PYTHON` holds the Python snippets with their blocks
indented, and :func:`python_code` checks that a copy has the document's lines,
indentation aside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOCUMENT = Path(__file__).with_name("seed_document.txt")

#: The sections whose snippets run, in document order; each ends where the next
#: heading in :data:`ENDS` starts.
SECTIONS = ("Using the Generated SDKs", "Advanced Filtering & Querying",
            "Counts & Aggregations", "Bulk Operations & Mass Updates",
            "Authentication Endpoints Usage")
ENDS = {"Authentication Endpoints Usage": "Testing & Verification Checklist"}

#: What may change in a snippet: the host and the credentials (given per run), and
#: the two places the document contradicts itself (issue 14 lists them):
#: ``create_user`` where every other method is plural, and ``listUsers({page,
#: pageSize})`` beside the positional ``filterUsers(payload, 1, 50)``.
HOST = "https://your-api.example.com"
RENAMES = {"users_api.create_user(": "users_api.create_users(",
           "usersApi.listUsers({ page: 1, pageSize: 25 })": "usersApi.listUsers(1, 25)"}

#: The Python snippets, by section, with the indentation the document lost.
PYTHON = {
    "Using the Generated SDKs": """\
from swain_api import Configuration, ApiClient
from swain_api.api import UsersApi
config = Configuration()
config.host = "https://your-api.example.com"
config.username = "user@example.com"
config.password = "super-secret" # OAuth2 password flow
with ApiClient(config) as api_client:
    users_api = UsersApi(api_client)
    page = users_api.list_users(page=1, page_size=25)
    created = users_api.create_user({"email": "new@acme.co"})
""",
    "Advanced Filtering & Querying": """\
filter_payload = {
    "expressions": [
        {"field": "status", "operator": "eq", "value": "active"},
        {
            "operator": "AND",
            "expressions": [
                {"field": "createdAt", "operator": "gte", "value": "2024-01-01T00:00:00Z"},
                {"field": "role", "operator": "in", "value": ["admin", "manager"]}
            ]
        }
    ],
    "sort": [{"field": "createdAt", "direction": "desc"}]
}
page = users_api.filter_users(filter_payload=filter_payload, page=1, page_size=50)
for user in page.data:
    print(user["email"], user.get("createdAt"))
""",
    "Counts & Aggregations": """\
count_payload = {
    "expressions": [{"field": "status", "operator": "eq", "value": "active"}]
}
count_response = users_api.count_users(filter_payload=count_payload)
print(f"Active users: {count_response.count}")
agg_payload = {
    "expressions": [{
        "relationship": "Orders",
        "include": True,
        "aggregations": {
            "functions": [{"type": "SUM", "field": "total", "alias": "order_value"}],
            "group_by": ["user_id"]
        }
    }]
}
report = users_api.filter_users(filter_payload=agg_payload, page=1, page_size=1)
print(report.data[0]["aggregations"]["order_value"])
""",
    "Bulk Operations & Mass Updates": """\
bulk_body = [
    {"email": "new-1@example.com", "password": "Secret123!"},
    {"email": "new-2@example.com", "password": "Secret123!"}
]
bulk_result = users_api.bulk_create_users(bulk_body)
for success in bulk_result.succeeded:
    print("created", success.id)
for failure in bulk_result.failed:
    print("failed", failure.error.code, failure.error.message)
update_payload = {
    "expressions": [{"field": "status", "operator": "eq", "value": "trial"}],
    "updateData": {"status": "expired"}
}
users_api.update_by_filter_users(update_filter_payload=update_payload)
users_api.delete_by_filter_users(filter_payload={
    "expressions": [{"field": "status", "operator": "eq", "value": "churned"}]
})
""",
}

_INTRO = re.compile(r"^(Python|TypeScript)\b")
_SHELL = ("pip install ", "npm install ")


@dataclass(frozen=True)
class Snippet:
    """One snippet: ``language`` is python, typescript or json."""

    section: str
    language: str
    line: int
    commands: tuple[str, ...]
    code: str

    def prepared(self, replacements: dict[str, str]) -> str:
        """The code with ``replacements`` (host, credentials and :data:`RENAMES`) made."""
        code = self.code
        for old, new in replacements.items():
            code = code.replace(old, new)
        return code


def python_code(section: str, text: str) -> str:
    """The indented copy (:data:`PYTHON`) of the Python snippet ``text`` of ``section``,
    checked to have the same lines, indentation aside."""
    copy = PYTHON[section]
    assert [line.strip() for line in copy.splitlines()] == \
        [line.strip() for line in text.splitlines()], f"{section}: the copy is not the document's"
    return copy


def _starts_prose(line: str) -> bool:
    return not line or line[0].isupper() or not line[0].isascii()


def _heading(line: str, title: str) -> bool:
    # Headings may carry an emoji (mis-decoded in the document) before the title.
    return line.strip().endswith(title) and len(line.strip()) <= len(title) + 4


def section_lines(title: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of the section ``title``, headings excluded."""
    lines = DOCUMENT.read_text(encoding="utf-8").splitlines()
    following = SECTIONS[SECTIONS.index(title) + 1:]
    ends = (*following[:1], *([ENDS[title]] if title in ENDS else []))
    start = next(i for i, line in enumerate(lines) if _heading(line, title))
    stop = next((i for i in range(start + 1, len(lines))
                 if any(_heading(lines[i], end) for end in ends)), len(lines))
    return [(i + 1, lines[i]) for i in range(start + 1, stop)]


def snippets(title: str) -> list[Snippet]:
    """Every snippet of the section ``title``, in document order."""
    found: list[Snippet] = []
    body = section_lines(title)
    i = 0
    while i < len(body):
        number, line = body[i]
        intro = _INTRO.match(line)
        if intro:
            j = i + 1
            while j < len(body) and not _starts_prose(body[j][1]):
                j += 1
            code = [text for _, text in body[i + 1:j]]
            commands = []
            while code and code[0].startswith(_SHELL):
                commands.append(code.pop(0))
            language = intro.group(1).lower()
            text = "\n".join(code) + "\n"
            found.append(Snippet(title, language, number + 1, tuple(commands),
                                 python_code(title, text) if language == "python" else text))
            i = j
        elif line.strip() == "{":
            depth, j = 0, i
            while True:
                depth += body[j][1].count("{") - body[j][1].count("}")
                j += 1
                if depth == 0:
                    break
            found.append(Snippet(title, "json", number, (),
                                 "\n".join(text for _, text in body[i:j]) + "\n"))
            i = j
        else:
            i += 1
    return found


def all_snippets() -> list[Snippet]:
    return [snippet for title in SECTIONS for snippet in snippets(title)]


def json_text(snippet: Snippet) -> str:
    """A JSON payload without its ``//`` comments."""
    return re.sub(r"\s*//[^\n]*", "", snippet.code)
