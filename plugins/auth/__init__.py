"""Authentication (``docs/authentication.md``): one feature, several plugins.

Each module below is a plugin of its own, registered by name in
``DEFAULT_PLUGINS`` so an operator can disable any of them
(``[plugins] disable = ["basic_auth"]``):

* ``mapping`` — the nine mapping cards (``[mapping.<card>]``), checked against
  the schema at startup; mapped secret columns are hidden from the table API;
  ``swain mapping check`` and ``swain mapping scaffold``.
* ``passwords`` — argon2id for new hashes, bcrypt verified and upgraded; every
  verification paced to the same duration.
* ``hash_formats`` — the stored hashes of Django, Werkzeug, ASP.NET Identity and
  Spring Security verified (``[auth] password_formats``) and upgraded.
* ``jwt`` — the account endpoints (signup, login, token, refresh, logout, me)
  and bearer access tokens; the other credential plugins build on its service.
* ``api_keys``, ``basic_auth``, ``password_reset``, ``smtp``, ``rate_limit``.

All of them are inert unless ``[auth] enabled = true`` and the ``user`` card
is mapped, so an open API (auth disabled) is served exactly as before.
"""
