"""The site's HTML: server-side, no JavaScript, readable on a phone. Every value is escaped (generated text
is untrusted); the only markup is this module's own."""

from __future__ import annotations

import time
from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import urlencode

from linernotes.bot.web.store import Public

CSS = """
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #fafafa; --muted: #6b6b70; --line: #ddd; --accent: #4752c4; }
@media (prefers-color-scheme: dark) { :root { --fg: #ececef; --bg: #18181b; --muted: #a0a0a8; --line: #333; --accent: #8f98ff; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 44rem; padding: 1rem; font: 17px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
header { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: baseline; border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
header .site { font-weight: 700; font-size: 1.2rem; text-decoration: none; }
h1 { font-size: 1.5rem; margin: .5rem 0; }
h2 { font-size: 1.15rem; margin-top: 1.5rem; }
blockquote { white-space: pre-wrap; margin: 1rem 0; padding: .75rem 1rem; border-left: 4px solid var(--accent); background: rgba(127,127,127,.08); overflow-wrap: anywhere; }
.meta, .snippet { color: var(--muted); font-size: .9rem; }
ul.items { list-style: none; padding: 0; } ul.items li { padding: .5rem 0; border-bottom: 1px solid var(--line); }
.tags { display: flex; flex-wrap: wrap; gap: .3rem; padding: 0; list-style: none; }
.tags li { border: 1px solid var(--line); border-radius: 1rem; padding: 0 .6rem; font-size: .9rem; }
form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; } label { display: flex; flex-direction: column; font-size: .9rem; }
select, button { font: inherit; padding: .2rem .4rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; display: block; overflow-x: auto; }
td, th { border-bottom: 1px solid var(--line); padding: .2rem .4rem; text-align: left; white-space: nowrap; }
img { max-width: 100%; height: auto; background: #fff; }
"""
KIND_NAMES = {"review": "Album reviews", "product": "Product reviews", "lyrics": "Lyrics"}
SNIPPET = 140  # characters of a text shown in a list
DESCRIPTION = 280  # characters of a text in a link preview


def e(value: Any) -> str:
    """``value`` as text safe inside HTML, attributes included."""
    return escape(str(value), quote=True)


def title_of(kind: str, tags: dict[str, Any]) -> str:
    """What a generation is, in words: "Metal · 7.5/10", "★★★★☆", "Chorus · in the style of X"."""
    if kind == "review":
        return f"{tags.get('genre', '?')} · {float(tags.get('score', 0)):.1f}/10"
    if kind == "product":
        rating = int(tags.get("rating", 0))
        return "★" * rating + "☆" * (5 - rating)
    if kind == "lyrics":
        title = str(tags.get("part", "lyrics")).replace("-", " ").title()
        return title + (f" · in the style of {tags['artist']}" if tags.get("artist") else "")
    return " · ".join(str(v) for v in tags.values()) or kind


def when(created: float) -> str:
    """A date and time as the pages show it (UTC)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(created))


def document(title: str, body: str, meta: dict[str, str] | None = None, kinds: Iterable[str] = ()) -> str:
    """A whole page: head (viewport, stylesheet, link-preview tags), the site's header, ``body`` (markup)."""
    tags = "".join(
        f'<meta {"name" if name.startswith("twitter:") else "property"}="{e(name)}" content="{e(value)}">'
        for name, value in (meta or {}).items()
    )
    nav = "".join(f'<a href="/?{urlencode({"kind": k})}">{e(KIND_NAMES.get(k, k))}</a>' for k in kinds)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{e(title)}</title><link rel="stylesheet" href="/site.css">{tags}</head>'
        f'<body><header><a class="site" href="/">linernotes</a>{nav}</header><main>{body}</main></body></html>'
    )


def preview(gen: Public, url: str) -> dict[str, str]:
    """Open Graph and Twitter card tags: a link pasted into Discord or elsewhere unfurls with the text."""
    title, text = title_of(gen.kind, gen.tags), " ".join(gen.text.split())
    description = text if len(text) <= DESCRIPTION else text[: DESCRIPTION - 1] + "…"
    return {
        "og:type": "article",
        "og:site_name": "linernotes",
        "og:title": title,
        "og:description": description,
        "og:url": url,
        "twitter:card": "summary",
        "twitter:title": title,
        "twitter:description": description,
    }


def generation_page(gen: Public, url: str, kinds: Iterable[str], more: str) -> str:
    """A permalink: the text with its tags, model id, rating counts and when it was written."""
    title = title_of(gen.kind, gen.tags)
    tags = "".join(f"<li>{e(name)}: {e(value)}</li>" for name, value in gen.tags.items())
    body = (
        f'<article><h1>{e(title)}</h1><ul class="tags" aria-label="tags"><li>{e(gen.kind)}</li>{tags}</ul>'
        f"<blockquote>{e(gen.text)}</blockquote>"
        f'<p class="meta">Written by <code>{e(gen.model_id)}</code> on <time>{e(when(gen.created))}</time></p>'
        f'<p class="rating">Rated <span class="up">{gen.up}</span> up · <span class="down">{gen.down}</span> '
        "down in Discord</p></article>"
        f'<p><a href="{e(more)}">More like this</a> · <a href="/api/g/{e(gen.id)}">JSON</a></p>'
    )
    return document(f"{title} · linernotes", body, preview(gen, url), kinds)


def items(gens: list[Public], empty: str) -> str:
    """A list of generations linking to their pages."""
    if not gens:
        return f'<p class="meta">{e(empty)}</p>'
    rows = []
    for gen in gens:
        text = " ".join(gen.text.split())
        snippet = text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"
        votes = (
            f" · {gen.up} up · {gen.down} down" if gen.up or gen.down else ""
        )  # words: no emoji font needed
        rows.append(
            f'<li><a href="/g/{e(gen.id)}">{e(title_of(gen.kind, gen.tags))}</a>'
            f'<div class="snippet">{e(snippet)}</div><div class="meta">{e(when(gen.created))}{votes}</div></li>'
        )
    return f'<ul class="items">{"".join(rows)}</ul>'


def picker(kind: str, choices: dict[str, list[str]], chosen: dict[str, str]) -> str:
    """A form choosing tag values of one kind (a plain GET form: no script needed)."""
    fields = [f'<input type="hidden" name="kind" value="{e(kind)}">']
    for name, values in choices.items():
        options = ['<option value="">any</option>'] + [
            f'<option value="{e(v)}"{" selected" if _same(chosen.get(name), v) else ""}>{e(v)}</option>'
            for v in values
        ]
        fields.append(f'<label>{e(name)}<select name="{e(name)}">{"".join(options)}</select></label>')
    return f'<form method="get" action="/">{"".join(fields)}<button type="submit">Show</button></form>'


def _same(chosen: str | None, value: str) -> bool:
    """Whether a value picked (in any case) is this option."""
    return chosen is not None and chosen.casefold() == value.casefold()


def index_page(heading: str, form: str, top: list[Public], newest: list[Public], kinds: Iterable[str]) -> str:
    """The browse page: what to pick, the top-rated and the newest."""
    body = (
        f"<h1>{e(heading)}</h1>{form}"
        f"<h2>Top rated</h2>{items(top, 'Nothing rated yet.')}"
        f"<h2>Newest</h2>{items(newest, 'Nothing here yet.')}"
    )
    return document(f"{heading} · linernotes", body, kinds=kinds)


def error_page(status: int, message: str) -> str:
    """A page saying what went wrong."""
    return document(
        f"{status} · linernotes", f"<h1>{status}</h1><p>{e(message)}</p><p><a href='/'>Home</a></p>"
    )


def table(headings: list[str], rows: list[list[Any]]) -> str:
    """A table of values (escaped)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image(svg_base64: str, alt: str) -> str:
    """A plot, inlined as a data URI (an image: a script inside an SVG never runs there)."""
    return f'<img alt="{e(alt)}" src="data:image/svg+xml;base64,{svg_base64}">'
