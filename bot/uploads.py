"""A server's lyrics upload: checked (type, size, text), stored as data only, and prepared by the same
readers ``linernotes prepare`` uses, with a report of what was kept and dropped.

Uploads are never executed or unpickled: they are read as UTF-8 text by the lyrics readers, nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linernotes.common.errors import InputError, LinernotesError
from linernotes.data.config import DataConfig
from linernotes.data.prepare import prepare

SUFFIXES = (".txt", ".json")  # lyrics with [Section] headers, songs text, Genius JSON
# Splits are per song: at 0.2, ten songs leave the validation split empty 11% of the time (0.8^10), and
# the job then trains without one (and says so) rather than failing.
VAL_FRACTION, TEST_FRACTION = 0.2, 0.0


class UploadError(LinernotesError):
    """An upload that cannot be used; the message says why and what would work."""


@dataclass(frozen=True)
class Prepared:
    """What preparing an upload kept and dropped, and where its splits are."""

    path: Path
    kept: int
    dropped: dict[str, int]
    splits: dict[str, int]
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        """The report stored with the model (and shown by /model list)."""
        return {"kept": self.kept, "dropped": self.dropped, "splits": self.splits, "tokens": self.tokens}

    def summary(self) -> str:
        """One line for the member who uploaded."""
        dropped = sum(self.dropped.values())
        why = ", ".join(f"{n} {reason}" for reason, n in self.dropped.items())
        return f"kept {self.kept} sections" + (
            f", dropped {dropped} ({why})" if dropped else ", dropped none"
        )


def check_upload(filename: str, size: int, limit: int) -> str:
    """A safe file name for an upload of ``size`` bytes, or an UploadError naming what is wrong."""
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise UploadError(
            f"{filename}: not a lyrics file this bot reads; send {' or '.join(SUFFIXES)} "
            "(plain text with [Verse]/[Chorus] headers, songs separated by blank lines, or Genius JSON)"
        )
    if size > limit:
        raise UploadError(
            f"{filename}: {size / 1e6:.1f} MB is over this bot's {limit / 1e6:.1f} MB upload limit"
        )
    if size == 0:
        raise UploadError(f"{filename}: the file is empty")
    # The stem names the artist when the file does not (as for `linernotes prepare`): keep it readable,
    # but never let it carry a path.
    stem = re.sub(r"[^\w\- ]+", "_", Path(filename).stem).strip(" ._") or "upload"
    return stem[:60] + suffix


def store_upload(data: bytes, name: str, folder: Path) -> Path:
    """Write the upload into ``folder`` after checking it is UTF-8 text; returns the file."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UploadError(f"{name}: not UTF-8 text (byte {e.start} is not valid UTF-8)") from None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def prepare_upload(upload: Path, out: Path) -> Prepared:
    """Prepare one uploaded file as lyrics into ``out`` (blocking: run it off the event loop)."""
    config = DataConfig(
        sources=[str(upload)],
        out=str(out),
        kind="lyrics",
        val_fraction=VAL_FRACTION,
        test_fraction=TEST_FRACTION,
    )
    try:
        result = prepare(config)
    except InputError as e:
        raise UploadError(f"{upload.name}: {e}") from None
    stats = result.stats
    if not stats["splits"].get("train"):
        raise UploadError(
            f"{upload.name}: too little usable text to train on ({stats['kept']} sections kept)"
        )
    return Prepared(
        out, stats["kept"], stats["dropped"], stats["splits"], sum(stats.get("tokens", {}).values())
    )
