"""The "Members" user table several auth tests share (each creates it in its own
DDL, next to its other tables): its ``[mapping.user]`` section."""

from __future__ import annotations

#: ``[mapping.user]`` for "Members" ("MemberNo", "EmailAddr", "pw_hash", "Enabled")
MEMBERS_USER: dict[str, str] = {
    "table": "Members",
    "id": "MemberNo",
    "email": "EmailAddr",
    "password": "pw_hash",
    "isactive": "Enabled",
}
