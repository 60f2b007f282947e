"""Server model names: the one normal form two names are compared by, everywhere (checks, lookups and
the database's uniqueness), so no server can hold two models its members cannot tell apart.

The normal form (``name_key``): Unicode NFKC (fullwidth ``ＤＥＦＡＵＬＴ`` reads ``DEFAULT``, ligatures
are split), then the Cyrillic and Greek letters drawn like basic Latin ones in common fonts folded to
those Latin letters (``CONFUSABLES``: Cyrillic А В Е І Ј К М Н О Р С Т У Х Ѕ Һ Ү Ԛ Ԝ Ӏ and small а е і ј к о р с
у х ѕ һ ү ԁ ԛ ԝ ӏ; Greek Α Β Ε Ζ Η Ι Κ Μ Ν Ο Ρ Τ Υ Χ Ϲ Ϳ and small α ι κ ν ο ρ υ χ ϲ ϳ), then
casefolded, with runs of spaces read as one. It is a list of common look-alikes, not every script's: other scripts, and digits
that resemble letters (0/O, 1/l), are left as they are, as names may well differ by them.
"""

from __future__ import annotations

import unicodedata

NAME_MAX = 32
RESERVED = "default"  # means the bot's own model in /model use

# Upper- and lower-case forms are listed apart: casefolding first would lose which one was drawn (Greek
# capital Ν looks like N, its small ν like v).
_LOOKALIKES = {
    # Cyrillic
    "А": "A", "а": "a", "В": "B", "Е": "E", "е": "e", "Ѕ": "S", "ѕ": "s", "І": "I", "і": "i",
    "Ј": "J", "ј": "j", "К": "K", "к": "k", "М": "M", "Н": "H", "һ": "h", "Һ": "H", "О": "O",
    "о": "o", "Р": "P", "р": "p", "С": "C", "с": "c", "Т": "T", "У": "Y", "у": "y", "Ү": "Y",
    "ү": "y", "Х": "X", "х": "x", "ԁ": "d", "Ԛ": "Q", "ԛ": "q", "Ԝ": "W", "ԝ": "w", "Ӏ": "I",
    "ӏ": "l",
    # Greek
    "Α": "A", "α": "a", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "ι": "i", "Κ": "K",
    "κ": "k", "Μ": "M", "Ν": "N", "ν": "v", "Ο": "O", "ο": "o", "Ρ": "P", "ρ": "p", "Τ": "T",
    "Υ": "Y", "υ": "u", "Χ": "X", "χ": "x", "ϲ": "c", "Ϲ": "C", "Ϳ": "J", "ϳ": "j",
}  # fmt: skip
CONFUSABLES = str.maketrans(_LOOKALIKES)


def name_key(name: str) -> str:
    """The form names are compared by: NFKC, look-alike letters folded to Latin, casefolded, one space."""
    text = unicodedata.normalize("NFKC", name).translate(CONFUSABLES).casefold()
    # Casefolding can make a small look-alike from a capital the table does not list, and undo NFKC.
    text = unicodedata.normalize("NFKC", text.translate(CONFUSABLES))
    return " ".join(text.split())


def free_name(name: str, taken: set[str]) -> str:
    """``name``, else ``name-2``, ``name-3``... (shortened to fit): the first whose key is neither in
    ``taken`` nor the reserved ``default``."""
    candidate, n = name, 2
    while name_key(candidate) in taken or name_key(candidate) == RESERVED:
        suffix = f"-{n}"
        candidate, n = name[: NAME_MAX - len(suffix)] + suffix, n + 1
    return candidate
