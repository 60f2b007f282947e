"""``linernotes models add|list``: an adapter trained outside the bot becomes a server's model, served to that
server only once the bot reloads or restarts; a wrong adapter, name or server, a name taken or a full quota is
refused in one line and leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextvars
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import simcord

from linernotes.bot import create_bot
from linernotes.bot.registry import ModelError, ModelRegistry
from linernotes.bot.storage import Database
from linernotes.cli.main import main
from linernotes.model.card import read_card
from linernotes.training.server import train_adapter
from tests.bot.helpers import footer_id
from tests.bot.test_server_models import manager
from tests.bot.test_storage import result
from tests.model.test_adapters import BROKEN, break_adapter, spoil

pytestmark = pytest.mark.simcord(settle_timeout=120)
KNOWN, OTHER, NEW = 111, 222, 333  # servers the bot has answered in (KNOWN, OTHER) and one it never has


@pytest.fixture(scope="module")
def adapter(sample_data: Path, tiny_fp32: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter trained outside the bot on its checkpoint, as `linernotes adapter` trains one."""
    work = tmp_path_factory.mktemp("outside")
    return Path(train_adapter(sample_data, tiny_fp32, work, 2, lambda event: None)["checkpoint"])


@pytest.fixture
def bot_settings(bot_settings, tmp_path):
    return {**bot_settings, "models_dir": str(tmp_path / "models")}


@pytest.fixture
def settings(tmp_path) -> Path:
    """The bot's settings file, as an operator's `linernotes bot --config` reads it."""
    path = tmp_path / "bot.toml"
    path.write_text(f'[bot]\nmodels_dir = "{tmp_path / "models"}"\nmodels_per_server = 3\n')
    return path


@pytest.fixture
def database(tmp_path) -> Path:
    """A bot database that has answered in servers KNOWN and OTHER."""
    path = tmp_path / "bot.sqlite3"

    async def fill() -> None:
        db = Database(path)
        await db.open()
        try:
            for guild in (KNOWN, OTHER):
                generation = await db.add(result(f"Answered in {guild}.", seed=guild), "k", "request")
                await db.delivered(
                    await db.reserve(generation, guild + 1, guild, db.user_hash(7), {}), guild + 2
                )
        finally:
            await db.close()

    asyncio.run(fill())
    return path


def add(
    checkpoint: Path, database: Path, settings: Path, adapter: Path, *extra: str, **options: object
) -> int:
    """`linernotes models add` with the bot's settings; returns its exit status."""
    options = {"guild": KNOWN, "name": "Outside", **options}
    flags = [f"--{k}={v}" for k, v in options.items()]
    argv = ["models", "add", str(adapter), *flags, "--checkpoint", str(checkpoint)]
    return main([*argv, "--db", str(database), "--config", str(settings), *extra])


def registered(database: Path) -> tuple[list[tuple], dict[int, int]]:
    """(server, name, status, adapter id) of every server model, and the row each server uses."""
    con = sqlite3.connect(database)
    try:
        models = con.execute(
            "SELECT guild_id, name, status, model_id FROM server_models ORDER BY id"
        ).fetchall()
        actives = dict(con.execute("SELECT guild_id, active_model FROM server_settings").fetchall())
    finally:
        con.close()
    return models, actives


def another_export(adapter: Path, to: Path) -> Path:
    """A copy of the adapter under another model id, as exporting its run again gives."""
    shutil.copytree(adapter, to)
    card = json.loads((to / "card.json").read_text())
    card["model_id"] += f"-{to.name}"
    (to / "card.json").write_text(json.dumps(card))
    return to


def files(tmp_path: Path) -> list[str]:
    """Every file under models_dir."""
    return sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "models").rglob("*") if p.is_file())


async def test_an_added_adapter_answers_its_server_after_a_reload_or_restart(
    simcord_env, adapter, tmp_path, bot_settings, capsys
):
    bot = simcord_env.bot
    guild = simcord_env.create_guild("Listening Party")
    channel = guild.create_text_channel("general")
    alice = guild.add_member(simcord_env.create_user("alice"))
    other = simcord_env.create_guild("Elsewhere")
    elsewhere = other.create_text_channel("general")
    eve = other.add_member(simcord_env.create_user("eve"))
    base_id = bot.requests.card.model_id
    for member, where in ((alice, channel), (eve, elsewhere)):  # the bot now knows both servers
        r = await member.slash(where, "lyrics", part="chorus")
        assert (await bot.db.get(footer_id(r.response))).model_id == base_id

    # The operator adds it while the bot runs, with the bot's own settings.
    settings = tmp_path / "bot.toml"
    settings.write_text(f'[bot]\nmodels_dir = "{bot_settings["models_dir"]}"\n')
    argv = ["models", "add", str(adapter), "--guild", str(guild.id), "--name", "Outside"]
    argv += ["--checkpoint", bot.config.checkpoint, "--db", bot.config.database, "--config", str(settings)]
    # main runs its own event loop: in a thread, in a fresh context (see the SimCord notes).
    assert await asyncio.to_thread(contextvars.Context().run, main, argv) == 0
    out = capsys.readouterr().out
    adapter_id = read_card(adapter).model_id
    kinds = ", ".join(read_card(adapter).kinds)
    assert (
        f"added 'Outside' for server {guild.id}: adapter {adapter_id} (knows {kinds}), now the server's model"
        in out
    )
    assert "a running bot loads it within 10 s (sync_interval)" in out  # the settings' default
    (model,) = await ModelRegistry(bot.db).of_server(guild.id)
    assert (model.status, model.model_id, model.base_model_id) == ("ready", adapter_id, base_id)
    copied = Path(model.path) / "checkpoint"
    assert copied.parent.parent == Path(bot_settings["models_dir"]) / str(guild.id)
    assert sorted(p.name for p in copied.iterdir()) == sorted(p.name for p in adapter.iterdir())

    # The running bot has not loaded it, and says so rather than "trained on another version".
    dana = manager(simcord_env, guild)
    listed = await dana.slash(channel, "model list")
    assert "**Outside** — ✅ ready" in listed.response.content
    assert "the bot has not loaded it (added since the bot started" in listed.response.content
    r = await alice.slash(channel, "lyrics", part="chorus")
    assert (await bot.db.get(footer_id(r.response))).model_id == base_id

    # Its next look at the store attaches it (every sync_interval; this bot's is 0, so the test looks).
    await bot.sync_now()
    r = await alice.slash(channel, "lyrics", part="chorus")
    assert (await bot.db.get(footer_id(r.response))).model_id == adapter_id

    # An operator's /reload attaches it again (a new generator holds no adapter) without a restart.
    await bot.admin.reload(None)
    mine = await alice.slash(channel, "lyrics", part="chorus")
    theirs = await eve.slash(elsewhere, "lyrics", part="chorus")
    assert (await bot.db.get(footer_id(mine.response))).model_id == adapter_id
    assert (await bot.db.get(footer_id(theirs.response))).model_id == base_id

    # So does a restart: that server's /lyrics is written by the adapter, the other server's by the bot's own.
    await bot.close()
    new = create_bot(bot.config.checkpoint, bot.config.database, **bot_settings)
    try:
        await simcord_env.restart_bot(new)
        mine = await alice.slash(channel, "lyrics", part="verse")
        theirs = await eve.slash(elsewhere, "lyrics", part="verse")
        assert (await new.db.get(footer_id(mine.response))).model_id == adapter_id
        assert (await new.db.get(footer_id(theirs.response))).model_id == base_id
        listed = await dana.slash(channel, "model list")
        assert "**Outside** — ✅ ready" in listed.response.content and "← in use" in listed.response.content
        assert "not loaded" not in listed.response.content
    finally:
        await new.close()


def test_list_shows_each_servers_models_and_which_it_uses(
    adapter, tiny_fp32, database, settings, tmp_path, capsys
):
    second = another_export(adapter, tmp_path / "second")
    assert add(tiny_fp32, database, settings, adapter) == 0
    assert add(tiny_fp32, database, settings, second, guild=OTHER, name="Second") == 0
    capsys.readouterr()

    assert main(["models", "list", "--db", str(database)]) == 0
    lines = capsys.readouterr().out.splitlines()
    base = read_card(tiny_fp32).model_id
    assert lines == [
        f"server {KNOWN}: 'Outside' ready, adapter {read_card(adapter).model_id}, on {base}, in use",
        f"server {OTHER}: 'Second' ready, adapter {read_card(second).model_id}, on {base}, in use",
    ]
    assert main(["models", "list", "--db", str(database), "--guild", str(NEW)]) == 0
    assert capsys.readouterr().out == f"no server models in server {NEW}\n"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("full checkpoint", "is not a LoRA adapter checkpoint (its card has no LoRA adapter)"),
        ("no card", "not a linernotes checkpoint (no card.json); export one with `linernotes export`"),
        ("other base", "was trained on base"),
        ("bad name", "--name: A model name is 1-32 letters, digits, spaces, '-' or '_'; got 'no/slash'."),
        ("default", "--name: 'default' means the bot's own model; choose another name."),
        ("not a number", "--guild 'my-server': not a Discord server id; give the server's id, a number"),
        ("zero", "--guild '0': not a Discord server id"),
        ("unknown server", f"--guild {NEW}: the bot has no record of this server (it never answered there)"),
        ("no database", "missing.sqlite3: no such database (the bot creates it when it first starts)"),
        ("no bot checkpoint", "the bot's checkpoint (--checkpoint, or checkpoint in its settings): "),
        ("models off", "server models are off in the bot's settings (server_models = false)"),
    ],
)
def test_refusals_name_what_is_wrong_and_leave_nothing(
    case, expected, adapter, tiny_fp32, tiny_checkpoint, database, settings, tmp_path, capsys
):
    checkpoint, path, db, options = tiny_fp32, adapter, database, {}
    if case == "full checkpoint":
        path = tiny_fp32
    elif case == "no card":
        path = tmp_path / "empty"
        path.mkdir()
    elif case == "other base":  # the bot serves the int8 export; the adapter was trained on the fp32 one
        checkpoint = tiny_checkpoint
    elif case == "no database":
        db = tmp_path / "missing.sqlite3"
    elif case == "no bot checkpoint":
        checkpoint = tmp_path / "gone"
    elif case == "models off":
        settings.write_text(settings.read_text() + "server_models = false\n")
    elif case in ("bad name", "default"):
        options["name"] = "no/slash" if case == "bad name" else "Default"
    else:
        options["guild"] = {"not a number": "my-server", "zero": "0", "unknown server": NEW}[case]
    assert add(checkpoint, db, settings, path, **options) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linernotes models: error: ") and "\n" not in err
    assert expected in err
    assert registered(database) == ([], {}) and files(tmp_path) == []
    assert not (tmp_path / "missing.sqlite3").exists()  # a refusal creates no database either


def test_a_taken_name_a_shared_adapter_and_a_full_quota_are_refused(
    adapter, tiny_fp32, database, settings, tmp_path, capsys
):
    copies = [another_export(adapter, tmp_path / f"copy{n}") for n in range(4)]
    assert add(tiny_fp32, database, settings, copies[0], name="Harbor") == 0
    kept = files(tmp_path)
    refusals = [
        (
            copies[1],
            {"name": "Harbor"},
            "--name: This server already has a model named 'Harbor'; delete it first.",
        ),
        (
            copies[0],
            {"guild": OTHER, "name": "Again"},
            f"adapter {read_card(copies[0]).model_id} is already server {KNOWN}'s model 'Harbor'",
        ),
    ]
    for path, options, expected in refusals:
        capsys.readouterr()
        assert add(tiny_fp32, database, settings, path, **options) == 2
        assert expected in capsys.readouterr().err
        assert files(tmp_path) == kept  # the refused copy is gone again

    # The server keeps the model it uses unless --use says otherwise.
    assert add(tiny_fp32, database, settings, copies[1], name="Dusty") == 0
    assert registered(database)[1] == {KNOWN: 1}
    assert add(tiny_fp32, database, settings, copies[2], "--use", name="Third") == 0
    models, actives = registered(database)
    assert [m[1:3] for m in models] == [("Harbor", "ready"), ("Dusty", "ready"), ("Third", "ready")]
    assert actives == {KNOWN: 3}

    kept = files(tmp_path)
    capsys.readouterr()
    assert add(tiny_fp32, database, settings, copies[3], name="Fourth") == 2  # models_per_server = 3
    assert (
        f"--guild {KNOWN}: This server has 3 models, its limit; /model delete one first."
        in capsys.readouterr().err
    )
    assert files(tmp_path) == kept and len(registered(database)[0]) == 3


@pytest.mark.parametrize(
    "case",
    ["r zero", "r a word", "config a list", "pickle only", "wrong shape", "unknown module", "r huge"]
    + ["base's id", "base's base id"],
)
def test_a_broken_adapter_is_refused_and_leaves_nothing(
    case, adapter, tiny_fp32, database, settings, tmp_path, capsys
):
    broken = break_adapter(adapter, tiny_fp32, tmp_path / "broken", case)
    assert add(tiny_fp32, database, settings, broken) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"linernotes models: error: {broken}: ") and "\n" not in err
    assert BROKEN[case][1] in err
    assert registered(database) == ([], {}) and files(tmp_path) == []


def test_an_adapter_under_an_id_that_wrote_texts_is_refused(
    adapter, tiny_fp32, database, settings, tmp_path, capsys
):
    # The database holds texts model "m1" wrote (a checkpoint the bot served before): deleting an adapter
    # registered under that id would delete them.
    reused = another_export(adapter, tmp_path / "reused")
    card = json.loads((reused / "card.json").read_text())
    (reused / "card.json").write_text(json.dumps({**card, "model_id": "m1"}))
    assert add(tiny_fp32, database, settings, reused) == 2
    assert "texts of another model are stored under adapter m1's id" in capsys.readouterr().err
    assert registered(database) == ([], {}) and files(tmp_path) == []


def test_links_in_an_adapter_folder_are_refused(adapter, tiny_fp32, database, settings, tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("a file of the host's, outside the adapter")
    linked = another_export(adapter, tmp_path / "linked")
    (linked / "notes.txt").symlink_to(secret)
    looped = another_export(adapter, tmp_path / "looped")
    (looped / "a").symlink_to(looped / "b")
    (looped / "b").symlink_to(looped / "a")
    weights = another_export(adapter, tmp_path / "weights")
    (weights / "adapter_model.safetensors").unlink()
    (weights / "adapter_model.safetensors").symlink_to(adapter / "adapter_model.safetensors")
    for path, name in ((linked, "notes.txt"), (looped, "a"), (weights, "adapter_model.safetensors")):
        capsys.readouterr()
        assert add(tiny_fp32, database, settings, path) == 2
        assert capsys.readouterr().err == (
            f"linernotes models: error: {path / name}: a symbolic link; an adapter folder must hold its own "
            "files (replace the link with a copy of the file)\n"
        )
        assert registered(database) == ([], {}) and files(tmp_path) == []
    # The folder itself may be a link (to the latest export, say): only what is inside it must be its own.
    latest = tmp_path / "latest"
    latest.symlink_to(another_export(adapter, tmp_path / "export-7"))
    assert add(tiny_fp32, database, settings, latest) == 0
    assert len(registered(database)[0]) == 1 and not any(
        p.is_symlink() for p in (tmp_path / "models").rglob("*")
    )


async def test_a_broken_adapter_is_failed_at_start_and_the_bot_serves_on(
    simcord_env, adapter, tiny_fp32, tmp_path, bot_settings
):
    bot = simcord_env.bot
    base_id = bot.requests.card.model_id
    settings = tmp_path / "bot.toml"
    settings.write_text(f'[bot]\nmodels_dir = "{bot_settings["models_dir"]}"\n')
    servers = []
    for n, name in enumerate(("Zero", "Listy", "Fine")):
        guild = simcord_env.create_guild(f"Server {name}")
        channel = guild.create_text_channel("general")
        member = guild.add_member(simcord_env.create_user(f"member{n}"))
        await member.slash(channel, "lyrics", part="chorus")  # the bot now knows the server
        argv = ["models", "add", str(another_export(adapter, tmp_path / name)), "--guild", str(guild.id)]
        argv += ["--name", name, "--checkpoint", bot.config.checkpoint, "--db", bot.config.database]
        assert (
            await asyncio.to_thread(contextvars.Context().run, main, [*argv, "--config", str(settings)]) == 0
        )
        (model,) = await ModelRegistry(bot.db).of_server(guild.id)
        servers.append((guild, channel, member, model))
    # Two copies break after they were added (as `models add` let such adapters in before it checked them).
    for (*_, model), case in zip(servers, ("r zero", "config a list"), strict=False):
        spoil(Path(model.path) / "checkpoint", tiny_fp32, case)

    await bot.close()
    new = create_bot(bot.config.checkpoint, bot.config.database, **bot_settings)
    try:
        await simcord_env.restart_bot(new)  # the bot starts
        for (guild, channel, member, model), case in zip(
            servers[:2], ("r zero", "config a list"), strict=True
        ):
            listed = await manager(simcord_env, guild, f"manager-{guild.id}").slash(channel, "model list")
            text = listed.response.content
            assert f"**{model.name}** — ❌ failed" in text and BROKEN[case][1] in text
            assert "its adapter cannot be served" in text and str(tmp_path) not in text
            assert "This server uses the bot's own model." in text
            r = await member.slash(channel, "lyrics", part="verse")
            assert (await new.db.get(footer_id(r.response))).model_id == base_id
        guild, channel, member, model = servers[2]  # an adapter that is fine still serves its server
        r = await member.slash(channel, "lyrics", part="verse")
        assert (await new.db.get(footer_id(r.response))).model_id == model.model_id
        statuses = [(await ModelRegistry(new.db).by_id(m.id)).status for *_, m in servers]
        assert statuses == ["failed", "failed", "ready"]
    finally:
        await new.close()


async def test_an_adapter_found_broken_fails_through_its_states_and_is_no_ones_choice(
    simcord_env, bot_settings, capsys
):
    bot = simcord_env.bot
    guild = simcord_env.create_guild("Listening Party")
    channel = guild.create_text_channel("general")
    registry = ModelRegistry(bot.db)
    folder = Path(bot_settings["models_dir"]) / str(guild.id) / "broken"
    (folder / "checkpoint").mkdir(parents=True)
    (folder / "checkpoint" / "card.json").write_text("{")  # spoiled since it was added
    base = bot.requests.card.model_id
    model = await registry.add(guild.id, "Broken", base, str(folder), "b.txt", {}, adapter_id="broken-1")
    await registry.set_active(guild.id, model.id)
    dana = manager(simcord_env, guild)
    r = await dana.slash(channel, "model use", name="Broken")  # the service now holds it, ready
    assert "the bot has not loaded it" in r.response.content
    simcord.assert_error(simcord_env, ModelError, contains="not loaded it")

    await bot.admin.reload(None)  # adapters are attached again: its check fails
    listed = (await dana.slash(channel, "model list")).response.content
    assert "**Broken** — ❌ failed: its adapter cannot be served" in listed and "← in use" not in listed
    assert not folder.exists()  # its files went, as every failed model's
    assert registered(bot.config.database)[1] == {guild.id: None}  # no longer the server's choice
    argv = ["models", "list", "--db", bot.config.database, "--guild", str(guild.id)]
    assert await asyncio.to_thread(contextvars.Context().run, main, argv) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"server {guild.id}: 'Broken' failed: its adapter cannot be served (")
    assert line.endswith(f", adapter broken-1, on {base}")  # not "in use"


def test_a_choice_left_on_a_failed_model_is_not_shown_in_use(database, capsys):
    async def fail_as_older_bots_did() -> None:
        db = Database(database)
        await db.open()
        try:
            registry = ModelRegistry(db)
            model = await registry.add(KNOWN, "Broken", "base", "/x", "b.txt", {}, adapter_id="broken-1")
            await registry.set_active(KNOWN, model.id)
            await registry.set_status(model.id, "failed", error="its adapter cannot be served")
        finally:
            await db.close()

    asyncio.run(fail_as_older_bots_did())
    assert main(["models", "list", "--db", str(database)]) == 0
    assert capsys.readouterr().out == (
        f"server {KNOWN}: 'Broken' failed: its adapter cannot be served, adapter broken-1, on base\n"
    )
