"""Rendering a SimCord session as a readable chat transcript, and parsing typed commands."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Any

import discord

WIDTH = 88
_OPTION = re.compile(r"""(\w+):(?:"([^"]*)"|'([^']*)'|(\S+))""")


def say(text: str = "") -> None:
    """Print one line of the demo's own narration."""
    print(text, flush=True)


def embed_lines(embed: discord.Embed, indent: str = "   ") -> list[str]:
    """An embed as a boxed block of text."""
    lines = [f"{indent}╭─ {embed.title or ''}"]
    body = (embed.description or "").replace("\\", "")  # markdown escapes are for Discord, not the terminal
    for paragraph in body.split("\n"):
        wrapped = textwrap.wrap(paragraph, WIDTH - len(indent) - 2) or [""]
        lines += [f"{indent}│ {w}" for w in wrapped]
    for field in embed.fields:
        lines.append(f"{indent}│ {field.name}: " + (field.value or "").replace("\n", " · "))
    if embed.footer and embed.footer.text:
        lines.append(f"{indent}╰─ {embed.footer.text}")
    return lines


def show_result(who: str, command: str, result: Any, seconds: float, deferred: bool) -> None:
    """Print what a member typed and how the bot answered."""
    say(f"{who} › {command}")
    response = result.response
    if response is None:
        say("   (no answer)")
        return
    how = (
        f'deferred at once ("linernotes is thinking…"), answered in {seconds:.1f} s'
        if deferred
        else f"answered in {seconds * 1000:.0f} ms"
    )
    private = " · only you can see this" if result.ephemeral else ""
    say(f"linernotes › ({how}{private})")
    if response.content:
        for line in response.content.splitlines():
            say(f"   {line}")
    for embed in response.embeds:
        for line in embed_lines(embed):
            say(line)
    buttons = [c.get("label") for row in response.components for c in row.get("components", [])]
    if buttons:
        say("   " + "  ".join(f"[🔁 {b}]" for b in buttons if b))


def generation_id(result: Any) -> int | None:
    """The generation number in an answer's footer."""
    if result.response is None or not result.response.embeds:
        return None
    footer = result.response.embeds[0].footer.text or ""
    m = re.match(r"#(\d+)", footer)
    return int(m.group(1)) if m else None


@dataclass
class Typed:
    """A line typed in the interactive demo."""

    member: str | None
    verb: str  # "slash", "react", "help", "quit", "members"
    name: str = ""
    options: dict[str, str] | None = None
    args: list[str] | None = None


def parse_line(line: str) -> Typed | None:
    """``/review genre:Jazz score:3.5``, ``react 👍 12``, ``as bob /stats``, ``help``, ``quit``."""
    line = line.strip()
    if not line:
        return None
    member = None
    if line.startswith("as "):
        _, member, line = (line.split(None, 2) + ["", ""])[:3]
    if line in {"quit", "exit", "q"}:
        return Typed(member, "quit")
    if line in {"help", "?"}:
        return Typed(member, "help")
    if line.startswith("/"):
        name, _, rest = line[1:].partition(" ")
        options, at = {}, 0
        for m in _OPTION.finditer(rest):
            if rest[at : m.start()].strip():
                raise ValueError(f"expected option:value, got {rest[at : m.start()].strip()!r}")
            options[m.group(1)] = next(g for g in m.groups()[1:] if g is not None)
            at = m.end()
        if rest[at:].strip():
            raise ValueError(f"expected option:value, got {rest[at:].strip()!r}")
        return Typed(member, "slash", name, options)
    words = line.split()
    if words[0] == "react" and len(words) == 3:
        return Typed(member, "react", args=words[1:])
    raise ValueError(f"unknown command {line.split()[0]!r}; type help")


HELP = """Commands (as in Discord; options are name:value, quote values with spaces):
  /review genre:Jazz score:3.5
  /lyrics part:verse            /lyrics part:chorus seed:"a first line" artist:"Iron Chapel"
  /product rating:4             /product rating:2 headline:"Snapped in a week"
  /show id:3                    /stats
  react 👍 3                    rate generation #3 (👍 or 👎)
  as bob /review genre:Rap score:8.0     act as another member (alice, bob)
  help                          quit"""
