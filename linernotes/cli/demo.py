"""``linernotes demo``: the whole product offline in one command.

bundled corpus -> prepared splits -> the pretrained offline base fine-tuned (a merged LoRA) -> int8
checkpoint -> warmed cache -> the real bot (``create_bot``) in a simulated Discord (SimCord) -> a short
session -> ratings -> training data -> a server manager uploads songs and the server gets its own
model. Model, database and server models are kept in the demo home, so a second run starts in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linernotes.cli.chat import HELP, generation_id, parse_line, say, show_result
from linernotes.common.flags import add_flags, flag

if TYPE_CHECKING:
    from linernotes.bot.app import LinernotesBot
    from linernotes.bot.cache import Key

log = logging.getLogger(__name__)
RECIPE = "demo"  # training/pipeline.py: LoRA on the pretrained offline base
# The card's scale and contrast per kind, chosen by the quality benchmarks (docs/quality.md, the same 200 seeds
# each). On the words-rendered demo model: reviews at guidance 3 with contrast 1 (also guided away from the
# mirrored score and another genre) followed score and genre far better than guidance 2 alone (Spearman 0.64
# against 0.49, genre 92.0% against 73.0%); stronger settings (guidance 4-5, contrast 1.5-2) gained within the
# noise and wrote prose further from the base's.
# Products keep guidance 2 without contrast (rating 0.37; contrast 1 gave 0.23, guidance 3 -0.21, n=60). For
# lyrics 2 was the lyrics benchmark's choice; they have no score to mirror.
GUIDANCE = {"review": 3.0, "product": 2.0, "lyrics": 2.0}
CONTRAST = {"review": 1.0}
# Warm-up writes 4 drafts per cached review and keeps the one the card's ranker finds most on-tag: at the
# settings above, judged by character n-gram judges that did not rank, score Spearman 0.60 -> 0.74 and genre
# 92.0% -> 98.0% over 200 reviews, 0.64 -> 0.73 and 90.0% -> 96.5% on other seeds (docs/quality.md). Warm-up
# pays for it in the background; a miss writes one unless the generator is idle (bot/drafts.py). Song parts
# are the best of 8: on the lyrics benchmark, by judges that did not rank, part adherence one draft / best
# of 4 / best of 8: 35.0% / 42.5% / 55.0% and 20.0% / 45.0% / 62.5% on two seed sets (ceiling 53.7%), artist
# 7% / 18% / 28% and 14% / 20% / 25%. Products write one (no gain at guidance 2).
CANDIDATES = {"review": 4, "lyrics": 8}
# Before the session: the keys the script asks for (to the bot's hot depth, so a later run still finds one
# while it tops up), then on a first run this many of the rest of the grid, so the cache shows more than
# the script (one warm batch: a CPU minute or so). Later runs top up only the script's keys.
WARM_LIMIT = 16
# The tags are the product, so the script asks for opposites a reader can tell apart: the same genre at a
# high and a low score, and a 5-star and a 1-star product.
DEMO_SCRIPT = [
    ("alice", "review", {"genre": "Metal", "score": 9.0}),
    ("bob", "review", {"genre": "Metal", "score": 2.0}),
    ("alice", "lyrics", {"part": "chorus", "seed": "neon on the river tonight"}),
    ("alice", "product", {"rating": 5}),
    ("bob", "product", {"rating": 1}),
]
# The script's one request meant to miss the cache on every run (``uncached_review`` moves it off a filled key).
MISS = ("bob", "review")
SERVER_MODEL_ASK = {"part": "chorus"}  # what carol asks the server's own model for, once it is trained


@dataclass(frozen=True)
class DemoArgs:
    """What ``linernotes demo`` takes."""

    interactive: bool = field(default=False, metadata=flag("after the scripted part, type commands yourself"))
    fresh: bool = field(default=False, metadata=flag("forget the cached model and database; start over"))
    home: str | None = field(
        default=None,
        metadata=flag(
            "where the demo keeps its model and database (default ./.linernotes/demo, or $LINERNOTES_HOME/demo)"
        ),
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` parser."""
    p = sub.add_parser(
        "demo", help="the whole loop offline: train, export, warm, and use the bot in a simulated Discord"
    )
    add_flags(p, DemoArgs)
    p.set_defaults(handler=run)


def demo_home(arg: str | None) -> Path:
    """The directory holding the demo's data, model and database."""
    if arg:
        return Path(arg)
    base = os.environ.get("LINERNOTES_HOME")
    return (Path(base) if base else Path(".linernotes")) / "demo"


def has_model(home: Path) -> bool:
    """Whether an earlier run left an exported demo checkpoint in ``home`` (``ensure_model`` reuses it)."""
    return (home / "checkpoint" / "card.json").is_file()


def ensure_model(home: Path) -> Path:
    """The demo checkpoint: reused when present, else prepared, fine-tuned and exported (minutes)."""
    checkpoint = home / "checkpoint"
    if has_model(home):
        say(
            f"Using the model trained on an earlier run ({checkpoint}); `linernotes demo --fresh` starts over."
        )
        return checkpoint
    import linernotes.data as data
    from linernotes.model.bases import resolve_base
    from linernotes.training.pipeline import RECIPES, build
    from linernotes.training.steering import Steering

    base = RECIPES[RECIPE]["base"]

    def indent(line: str) -> None:
        say("    " + line)

    say(f"1/2 The pretrained base model {base!r} (fetched and converted on first use, then cached)")
    resolve_base(base, say=indent)
    say(
        "2/2 Fine-tuning it on the bundled sample corpus on this CPU (a LoRA adapter, one pass: a few "
        "minutes), then merging and exporting an 8-bit checkpoint with its card and copy-guard index"
    )
    sample = Path(data.__file__).parent / "sample"
    built = build(
        [sample],
        home,
        RECIPE,
        "int8",
        Steering(
            guidance=GUIDANCE,
            contrast=CONTRAST,
            candidates=CANDIDATES,
        ),
        say=indent,
    )
    stats, summary = built.stats, built.summary
    say(
        f"    prepared: {stats['kept']} examples kept of {stats['rows_read']} rows read "
        f"({', '.join(f'{k} {v}' for k, v in stats['dropped'].items()) or 'none'} dropped); "
        f"splits {stats['splits']}"
    )
    say(
        f"    trained: {summary['status']} after {summary['steps']} steps; best validation loss "
        f"{summary['best_val_loss']:.3f} (perplexity {summary['best_val_ppl']:.1f}); loss curve: "
        f"{built.run / 'loss.png'}"
    )
    card = built.card
    assert card is not None  # exported: precision was given
    say(f"    {checkpoint}: {card.model_id}, knows {', '.join(card.kinds)}")
    return checkpoint


def simulated_bot(checkpoint: Path, database: Path, **settings: Any) -> LinernotesBot:
    """The real bot, unstarted, set up for a simulated Discord (the demo's and the playground's);
    ``settings`` are BotConfig fields that replace the demo's."""
    from linernotes.bot.app import LinernotesBot
    from linernotes.bot.config import load_config

    # LINERNOTES_* settings apply as for the real bot; these keep the demo small and snappy.
    # sync="always": every run is a new simulated Discord that has never seen the commands.
    demo_settings = {
        "warm_interval": 0,
        "sync_interval": 0,  # one process on its own store: nothing to follow
        "cooldown": 0,
        "per_key": 1,
        "hot_per_key": 2,
        "warm_limit": WARM_LIMIT,
        "sync": "always",
        "web_port": 0,  # the website beside the bot, on any free port of 127.0.0.1
        # The demo runs on this machine's CPU, where the int8 checkpoint generates at 0.75x fp32's speed
        # (docs/benchmarks.md, "Generation"): it takes the README's advice for CPU hosts and loads it as fp32.
        "precision": "fp32",
    }
    config = load_config(
        None,
        os.environ,
        checkpoint=str(checkpoint),
        database=str(database),
        **{**demo_settings, **settings},
    )
    return LinernotesBot(config, shard_count=1)


def quiet_logging() -> None:
    """Only warnings from the libraries: the demo narrates for itself."""
    logging.getLogger("linernotes").setLevel(logging.WARNING)
    for noisy in ("bot", "model", "training", "data", "apscheduler", "simcord"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("discord").setLevel(logging.ERROR)  # voice-support notices are noise here


async def session(checkpoint: Path, database: Path, interactive: bool, lines: Any, grid: bool = True) -> None:
    """Run the real bot in SimCord and play the scripted session (then the interactive one); ``grid``:
    the warm-up also fills the first keys of the whole grid (a first run), not only the script's."""
    import simcord

    bot = simulated_bot(checkpoint, database)
    try:
        async with simcord.run(bot, settle_timeout=600, check_errors=False) as env:
            await play(env, bot, database, interactive, lines, grid)
    finally:
        await bot.close()  # idempotent; covers a failure inside the simulated session


async def play(env, bot, database: Path, interactive: bool, lines: Any, grid: bool = True) -> None:
    """The scripted session, then the interactive shell."""
    guild = env.create_guild("linernotes demo")
    channel = guild.create_text_channel("listening-party")
    members = {name: guild.add_member(env.create_user(name)) for name in ("alice", "bob")}
    say(
        f"\nThe real bot is running against a simulated Discord: server '{guild.name}', "
        f"#{channel.name}, members alice and bob."
    )
    await warm_up(bot, grid)
    results = {}
    for who, name, options in DEMO_SCRIPT:
        if (who, name) == MISS:
            options = await uncached_review(bot, options)
        results[name + who] = await slash(env, members[who], channel, name, options)
    # Two members rate: the 9.0 review splits them, the 2.0 review wins both over.
    votes = [
        ("alice", "👍", "reviewalice"),
        ("bob", "👎", "reviewalice"),
        ("alice", "👍", "reviewbob"),
        ("bob", "👍", "reviewbob"),
        ("bob", "👍", "lyricsalice"),
    ]
    for who, emoji, which in votes:
        gid = generation_id(results[which])
        if gid is None:
            continue  # that request got an apology, not a generation: nothing to rate
        await members[who].react(results[which].response, emoji)
        say(f"{who} reacted {emoji} to #{gid}")
    say("")
    await on_the_web(bot, results["reviewalice"])
    await server_model(env, bot, guild, channel)
    await slash(env, members["bob"], channel, "stats", {})
    if interactive:
        await shell(env, members, channel, lines)
    await where_ratings_landed(bot, database)


def script_keys(bot: LinernotesBot) -> list[Key]:
    """The cache keys the session will ask for: what the script asks without words of its own (a seed line
    is always written anew), bob's review aside (it is meant to miss), and carol's chorus."""
    from linernotes.bot.cache import key_for

    asks = [(name, options) for who, name, options in DEMO_SCRIPT if (who, name) != MISS]
    step = bot.config.score_bucket
    keys = [
        key_for(name, tags, step, tags.get("seed")) for name, tags in [*asks, ("lyrics", SERVER_MODEL_ASK)]
    ]
    return [key for key in keys if not key.private]


async def warm_up(bot: LinernotesBot, grid: bool) -> None:
    """Fill the cache before the session: the script's keys, then (``grid``) the grid's first keys."""
    started = time.time()
    stored = await bot.warm_now(script_keys(bot))
    rest = await bot.warm_now() if grid else 0
    also = f", then {rest} for the grid's first keys" if grid else ""
    say(
        f"Warm-up: {stored} new generations stored for the keys this session asks for{also}, in "
        f"{time.time() - started:.0f} s (the cache keeps the most asked-for keys ready; a miss is "
        "generated on demand).\n"
    )


async def on_the_web(bot: LinernotesBot, answer: Any) -> None:
    """One of the session's answers on the website the bot serves beside it: its permalink, and an API call
    for the same key (a script's or another bot's way in; it counts as a showing)."""
    import aiohttp

    gid = generation_id(answer)
    link = await bot.web_link(gid) if gid is not None else None
    if bot.site_url is None or link is None:
        return
    call = f"{bot.site_url}/api/review?genre=Metal&score=9.0"
    async with aiohttp.ClientSession() as session, session.get(call) as response:
        status, body = response.status, await response.json()
    got = f"{body['id']}: {' '.join(body['text'].split())[:70]}…" if status == 200 else body.get("error")
    say(f"On the web, while the bot runs (the site and JSON API beside it, {bot.site_url}/):")
    say(f"  #{gid}'s permalink: {link}")
    say(f"  curl '{call}'  ->  {status}, {got}\n")


async def server_model(env, bot, guild, channel) -> None:
    """A server manager uploads a small song file; the server's own model then writes a chorus. A later
    run finds that model ready (the simulated server is the same each run) and only asks."""
    import discord

    import linernotes.data as data

    listed = await bot.server_models(guild.id)
    if listed is None:
        return
    role = guild.create_role("managers", permissions=discord.Permissions(manage_guild=True))
    carol = guild.add_member(env.create_user("carol"), roles=[role])
    ready = [m for m, _, unusable in listed if m.status == "ready" and not unusable]
    if ready:
        say(f"carol uploaded {ready[0].upload} on an earlier run; this server's model is ready.\n")
        await slash(env, carol, channel, "model list", {})
    else:
        say(
            "carol manages the server: she uploads a file of her own songs and the bot trains this server's "
            "model from it in the background (a few minutes on a CPU).\n"
        )
        upload = Path(data.__file__).parent / "upload_sample" / "harbor_lights.txt"
        await slash(
            env, carol, channel, "model train", {"name": "Harbor", "file": (upload.name, upload.read_bytes())}
        )
    await slash(env, carol, channel, "lyrics", SERVER_MODEL_ASK)


async def uncached_review(bot: LinernotesBot, wanted: dict[str, Any]) -> dict[str, Any]:
    """``wanted``, or the nearest score of its genre with nothing cached, so every run shows a miss
    (an earlier run's warm-up fills the keys that run asked for)."""
    from linernotes.bot.cache import key_for, score_buckets

    card = bot.card
    depth = await bot.cache_depth()
    step = bot.config.score_bucket
    lo, hi = card.score_range()
    # A bucket at the range's edge may lie just outside it; the request must stay inside to be accepted.
    buckets = [b for b in score_buckets(card, step) if lo <= b <= hi]
    for score in sorted(buckets, key=lambda b: (abs(b - wanted["score"]), b)):
        tags = {**wanted, "score": score}
        if not depth.get(key_for("review", tags, step).key):
            return tags
    return wanted  # every key is cached: this run's "miss" is a hit


async def slash(env, member, channel, name: str, options: dict[str, Any]):
    """Run one slash command as ``member`` and print it as chat."""
    # An attachment is (file name, bytes): shown by its name, as Discord's client shows it.
    values = {k: v[0] if isinstance(v, tuple) else v for k, v in options.items()}
    shown = " ".join(f'{k}:"{v}"' if " " in str(v) else f"{k}:{v}" for k, v in values.items())
    before = len(env.http_requests)
    started = time.time()
    result = await member.slash(channel, name, **options)
    seconds = time.time() - started
    deferred = any(q.path.endswith("/callback") and q.json == {"type": 5} for q in env.http_requests[before:])
    show_result(member.name, f"/{name} {shown}".rstrip(), result, seconds, deferred)
    say("")
    return result


async def shell(env, members: dict[str, Any], channel, lines: Any) -> None:
    """The interactive part: read commands (from a terminal or a pipe) until quit or end of input."""
    import simcord

    say("Your turn. " + HELP + "\n")
    loop = asyncio.get_running_loop()
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("alice › ", end="", flush=True)
        line = await loop.run_in_executor(None, lines.readline)
        if not line:
            break
        try:
            typed = parse_line(line)
        except ValueError as e:
            say(f"   {e}")
            continue
        if typed is None:
            continue
        member = members.get(typed.member or "alice")
        if member is None:
            say(f"   no member {typed.member!r}; members are: {', '.join(members)}")
            continue
        if typed.verb == "quit":
            break
        if typed.verb == "help":
            say(HELP)
            continue
        if typed.verb == "react":
            await react(env, member, channel, *typed.args)
            continue
        options = coerce(env.bot, typed.name, typed.options or {})
        if options is None:
            continue
        try:
            await slash(env, member, channel, typed.name, options)
        except simcord.SetupError as e:  # rejected before sending, as Discord's own client would
            say(f"   Discord won't send that: {e}\n")


def coerce(bot, name: str, options: dict[str, str]) -> dict[str, Any] | None:
    """Options converted to the command's parameter types; None (after saying why) when impossible."""
    command = bot.tree.get_command(name)
    if command is None:
        names = ", ".join(f"/{c.name}" for c in bot.tree.get_commands())
        say(f"   Unknown command /{name}. Commands: {names}")
        return None
    types = {p.name: p.type for p in command.parameters}
    out: dict[str, Any] = {}
    for key, value in options.items():
        kind = types.get(key)
        try:
            if kind is not None and kind.name == "number":
                out[key] = float(value)
            elif kind is not None and kind.name == "integer":
                out[key] = int(value)
            else:
                out[key] = value
        except ValueError:
            say(f"   Discord won't send that: option {key} of /{name} must be a {kind.name}, got {value!r}")
            return None
    return out


async def react(env, member, channel, emoji: str, gid_text: str) -> None:
    """``react 👍 12``: rate generation #12 as posted in this channel."""
    if not gid_text.lstrip("#").isdigit():
        say(f"   react needs a generation number, got {gid_text!r}")
        return
    gid = int(gid_text.lstrip("#"))
    places = [p for p in await env.bot.places(gid) if p["channel_id"] == channel.id]
    if not places:
        say(f"   #{gid} was not posted in #{channel.name}")
        return
    message = await env.bot.get_channel(channel.id).fetch_message(places[-1]["message_id"])
    await member.react(message, emoji)
    up, down = await env.bot.votes(gid)
    say(f"{member.name} reacted {emoji} to #{gid} (now {up} 👍, {down} 👎)\n")


async def where_ratings_landed(bot, database: Path) -> None:
    """Show the ratings in the database and export them as training data."""
    from linernotes.bot.feedback import export_feedback

    out = database.parent / "feedback"
    counts = await export_feedback(database, out)
    say(f"\nRatings landed in {database} (votes are stored per hashed user, one per generation).")
    say(
        f"`linernotes feedback export --db {database} --out {out}` wrote {counts['train']} approved "
        f"generations, {counts['rated']} rated, {counts['pairs']} preference pairs."
    )
    say(f"Retrain with them: linernotes train --data {database.parent / 'prepared'} --extra-data {out} ...")
    say(
        f"The cache on the web, without the bot: linernotes web --db {database} --checkpoint "
        f"{database.parent / 'checkpoint'} (then open http://127.0.0.1:8080/)"
    )


def go_live(checkpoint: Path) -> None:
    """What to change to run this for real."""
    say(
        "\nGo live: create an application at https://discord.com/developers/applications, copy its bot token, "
        "invite it (see README), then:"
    )
    say(f"  DISCORD_TOKEN=... linernotes bot {checkpoint} --db linernotes.sqlite3")


def run(args: argparse.Namespace) -> int:
    """The demo command."""
    home = demo_home(args.home)
    if args.fresh and home.exists():
        shutil.rmtree(home)
        say(f"Removed {home}; starting over.")
    home.mkdir(parents=True, exist_ok=True)
    quiet_logging()
    checkpoint = ensure_model(home)
    database = home / "bot.sqlite3"
    # A later run finds the cache an earlier one filled: it tops up only the keys its script asks for.
    asyncio.run(session(checkpoint, database, args.interactive, sys.stdin, grid=not database.exists()))
    go_live(checkpoint)
    return 0
