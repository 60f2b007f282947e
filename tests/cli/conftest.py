"""The browser the command tests share (Debian's chromium driven by playwright; see test_playground.py)."""

from tests.cli.test_playground import browser, chromium  # noqa: F401 (fixtures)
