"""A server's lyrics upload: checked (type, size, text), stored as data only, and prepared by the same
readers ``linernotes prepare`` uses, with a report of what was kept and dropped.

Uploads are never executed or unpickled: they are read as UTF-8 text by the lyrics readers, nothing else.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linernotes.common.errors import InputError, LinernotesError
from linernotes.data.config import DataConfig
from linernotes.data.prepare import prepare
from linernotes.data.problems import SourceError
from linernotes.model.seedline import strip_invisible

log = logging.getLogger(__name__)
SUFFIXES = (".txt", ".json")  # lyrics with [Section] headers, songs text, Genius JSON
WHAT_WORKS = (
    "send .txt lyrics with [Verse]/[Chorus] headers (# Title lines start songs), "
    "songs separated by blank lines, or Genius JSON"
)
# Splits are per song: at 0.2, ten songs leave the validation split empty 11% of the time (0.8^10), and
# the job then trains without one (and says so) rather than failing. One song is split by section,
# and training is never left empty (data.prepare.split_items).
VAL_FRACTION, TEST_FRACTION = 0.2, 0.0
NAME_SHOWN = 80  # characters of a file name echoed to the member; a message must fit Discord's 2,000
REASONS_SHOWN, REASON_SHOWN = 5, 120  # drop reasons in a summary, and characters of each
WHY_SHOWN = 800  # characters of a refusal's reason (the readers' reasons are short; this bounds them)


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
        """One line for the member who uploaded (the most common reasons for drops: it must fit a message)."""
        dropped = sum(self.dropped.values())
        reasons = sorted(self.dropped.items(), key=lambda r: -r[1])
        why = ", ".join(f"{n} {reason[:REASON_SHOWN]}" for reason, n in reasons[:REASONS_SHOWN])
        if len(reasons) > REASONS_SHOWN:
            why += f", {sum(n for _, n in reasons[REASONS_SHOWN:])} for other reasons"
        return f"kept {self.kept} sections" + (
            f", dropped {dropped} ({why})" if dropped else ", dropped none"
        )


def shown(filename: str) -> str:
    """A member's file name as a markdown code span that shows it as it is, bounded in length.

    Characters that hide or reorder text are dropped; a backtick would end the span early, so it
    becomes a quote (markdown is literal inside a code span); a long name keeps its start and suffix.
    """
    # Dropped, not spaced: a bidi override such as U+202E would flip the shown extension.
    name = strip_invisible(filename, "", keep="").replace("`", "'").strip()
    if not name:
        return "your file"
    if len(name) > NAME_SHOWN:
        suffix = Path(name).suffix[:12]
        name = name[: NAME_SHOWN - len(suffix) - 1] + "…" + suffix
    return f"`{name}`"


def refusal(filename: str, why: str) -> UploadError:
    """The UploadError for ``filename``: its shown name and why (bounded: it must fit one message)."""
    if len(why) > WHY_SHOWN:
        why = why[: WHY_SHOWN - 1] + "…"
    return UploadError(f"{shown(filename)}: {why}")


def size_text(n: int) -> str:
    """A size in bytes as people read it: "512 bytes", "20 kB", "1.5 MB" (decimal units, as Discord's)."""
    if n < 1000:
        return f"{n:,} bytes"
    kb = round(n / 1e3, 1)
    if kb < 1000:  # by the rounded value: 999,990 bytes reads "1 MB", not "1000 kB"
        return f"{kb:.1f}".removesuffix(".0") + " kB"
    return f"{n / 1e6:.1f}".removesuffix(".0") + " MB"


def size_pair(size: int, limit: int) -> tuple[str, str]:
    """``size`` and ``limit`` as text; in exact bytes when rounding would show different sizes alike."""
    a, b = size_text(size), size_text(limit)
    if a == b and size != limit:
        return f"{size:,} bytes", f"{limit:,} bytes"
    return a, b


def check_upload(filename: str, size: int, limit: int) -> str:
    """A safe file name for an upload of ``size`` bytes, or an UploadError naming what is wrong."""
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise refusal(filename, f"not a lyrics file this bot reads; {WHAT_WORKS}")
    if size > limit:
        over, allowed = size_pair(size, limit)
        raise refusal(filename, f"{over} is over this bot's upload limit of {allowed}")
    if size == 0:
        raise refusal(filename, "the file is empty")
    # The stem names the artist when the file does not (as for `linernotes prepare`): keep it readable,
    # but never let it carry a path.
    stem = re.sub(r"[^\w\- ]+", "_", Path(filename).stem).strip(" ._") or "upload"
    return stem[:60] + suffix


def store_upload(data: bytes, name: str, folder: Path) -> Path:
    """Write the upload into ``folder`` after checking it is UTF-8 text; returns the file."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise refusal(name, f"not UTF-8 text (byte {e.start} is not valid UTF-8); save it as UTF-8") from None
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
        raise refusal(upload.name, f"{_plain(e, upload)}; {WHAT_WORKS}") from None
    stats = result.stats
    if not stats["splits"].get("train"):  # prepare never leaves training empty; should it ever, say so
        raise refusal(upload.name, f"too little usable text to train on ({stats['kept']} sections kept)")
    dropped = dict(result.plain_dropped().most_common())
    return Prepared(out, stats["kept"], dropped, stats["splits"], sum(stats.get("tokens", {}).values()))


def _plain(error: InputError, upload: Path) -> str:
    """Why the readers refused an upload, in terms of the file: never a host path or a CLI option."""
    if isinstance(error, SourceError):
        return error.plain
    # An InputError without a plain wording is about the host (a path, an option), not the file's content.
    log.warning("upload %s could not be prepared: %s", upload, error)
    return "it could not be read as lyrics"
