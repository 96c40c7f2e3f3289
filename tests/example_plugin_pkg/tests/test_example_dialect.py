"""The example package's dialect passes the dialect conformance suite, run the way
a third-party dialect runs it: by its registered name, on a database the dialect
creates itself."""

from __future__ import annotations

from swain.contrib.testing.dialect_suite import *  # noqa: F403 - the suite's tests and fixtures
from swain.contrib.testing.dialect_suite import dialect_under_test

suite_dialect = dialect_under_test("examplesqlite")
