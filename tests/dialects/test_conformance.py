"""The dialect conformance suite (``swain.contrib.testing.dialect_suite``) on the
three built-in dialects; ``tests/example_plugin_pkg`` runs it on its own."""

from __future__ import annotations

from swain.contrib.testing import selected_dialects
from swain.contrib.testing.dialect_suite import *  # noqa: F403 - the suite's tests and fixtures
from swain.contrib.testing.dialect_suite import dialect_under_test

suite_dialect = dialect_under_test(*selected_dialects())
