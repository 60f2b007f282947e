"""Where the shared third-party corpora are: ``shared/corpora`` beside this checkout, however it is reached.

CI clones the project into a fresh folder and lays a read-only copy of ``shared/`` beside the clone. The
checkout may be reached through a symlink, and then ``Path(__file__).resolve()`` names its real folder,
where no ``shared/`` is: the corpora tests skipped there. So the checkout is looked for both as the shell
names it (``$PWD``) and as it really is, and ``LINERNOTES_SHARED`` may name the folder outright.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REPO


def checkouts(pwd: str | None = None) -> list[Path]:
    """This checkout as the shell names it (through any symlink), then as it really is."""
    found = [REPO]
    logical = Path(pwd if pwd is not None else os.environ.get("PWD", "/"))
    for folder in [logical, *logical.parents]:
        if folder != REPO and folder.resolve() == REPO:
            found.insert(0, folder)
            break
    return found


def places(pwd: str | None = None, env: str | None = None) -> list[Path]:
    """Every folder that may hold ``corpora/``, first found first used."""
    named = env if env is not None else os.environ.get("LINERNOTES_SHARED", "")
    return ([Path(named)] if named else []) + [c.parent / "shared" for c in checkouts(pwd)]


def shared(name: str) -> Path:
    """The corpus ``name``; skip where no place has it, but fail in CI, which always lays the corpora."""
    looked = [p / "corpora" / name for p in places()]
    for path in looked:
        if path.is_dir():
            return path
    where = ", ".join(str(p) for p in looked)
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI lays shared/ beside the checkout, but {name} is in none of: {where}")
    pytest.skip(f"{name} is not beside this checkout (looked in {where}; LINERNOTES_SHARED names another)")
