"""``evaluate``: every measure on one checkpoint, written as ``report.json``, ``report.md`` and plots."""

from __future__ import annotations

import datetime as dt
import json
import logging
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from linernotes.common.errors import InputError
from linernotes.data.format import Record
from linernotes.data.splits import read_split
from linernotes.model.card import Card
from linernotes.model.config import GenerateConfig, Sampling, card_sampling
from linernotes.model.copyguard import CopyGuard, build_index, words
from linernotes.model.generator import Generator
from linernotes.training.dataset import fingerprint
from linernotes.training.eval import plots
from linernotes.training.eval.adherence import adherence
from linernotes.training.eval.conditions import Sample, conditions, sample
from linernotes.training.eval.config import EvalConfig
from linernotes.training.eval.copying import copying
from linernotes.training.eval.diversity import diversity, duplicate_share, truncate_words
from linernotes.training.eval.judges import CLASSIFIED, load_or_fit
from linernotes.training.eval.likelihood import (
    Perplexity,
    TagId,
    nll_scorer,
    perplexity,
    tag_id,
    tag_id_cases,
)
from linernotes.training.eval.ratings import approval
from linernotes.training.eval.report import write_markdown
from linernotes.training.eval.result import AtScale, EvalReport, Floor, Generation, HeldOut, Samples

log = logging.getLogger(__name__)


def _splits(data: str) -> tuple[list[Record], list[Record], str]:
    directory = Path(data)
    if not (directory / "train.jsonl").is_file():
        raise InputError(f"--data {data}: no train.jsonl (run `linernotes prepare ... --out {data}`)")
    train = [i.record for i in read_split(directory, "train")]
    for split in ("test", "val"):
        if (directory / f"{split}.jsonl").is_file() and (
            held := [i.record for i in read_split(directory, split)]
        ):
            return train, held, split
    raise InputError(
        f"--data {data}: no test.jsonl or val.jsonl with examples; nothing held out to evaluate on"
    )


def candidate_values(card: Card, config: EvalConfig, held: list[Record]) -> dict[tuple[str, str], list[str]]:
    """(kind, tag) -> the values judges, conditions and tag-ID use: those known to the model with the most
    held-out examples (then the most training examples), so the ceiling and tag-ID rest on evidence."""
    out = {}
    for kind in filter(config.wants, card.kinds):
        for tag in CLASSIFIED:
            known = [str(v) for v in card.tags[kind].get(tag, {})]  # most trained first
            held_n = Counter(str(r.tags[tag]) for r in held if r.kind == kind and tag in r.tags)
            # sorted() is stable: among values with as many held-out examples, training frequency decides.
            values = sorted(known, key=lambda v: -held_n[v])[: config.limit(tag)]
            if len(values) >= 2:
                out[(kind, tag)] = values
    return out


def _group_key(s: Sample) -> str:
    return json.dumps([s.condition.kind, s.condition.tags], sort_keys=True)


def _real_groups(samples: list[Sample], train: list[Record]) -> dict[str, list[str]]:
    """Real texts for each condition's categorical tags, as many and as long as the generated ones."""
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[_group_key(s)].append(s)
    out = {}
    for key, group in groups.items():
        cond = group[0].condition
        wanted = {k: str(v) for k, v in cond.tags.items() if k in CLASSIFIED}
        length = int(statistics.median(len(words(s.text)) for s in group)) or 1
        real = [
            r.text
            for r in train
            if r.kind == cond.kind and all(str(r.tags.get(k)) == v for k, v in wanted.items())
        ]
        if len(real) >= 2:
            out[key] = [truncate_words(t, length) for t in real[: len(group)]]
    return out


def _at_scale(samples: list[Sample], floor: list[Sample], judges, held, guard, train) -> AtScale:
    groups: dict[str, list[str]] = defaultdict(list)
    for s in samples:
        groups[_group_key(s)].append(s.text)
    n = len(samples)
    return AtScale(
        adherence={f"{k}/{t}": adherence(j, samples, floor, held) for (k, t), j in judges.items()},
        copying=copying([s.text for s in samples], guard, [r.text for r in train]),
        diversity=diversity(dict(groups)),
        clean_stops=sum(s.result.stop == "end" for s in samples) / n,
        header_leaks=sum("<|" in s.text or "|>" in s.text for s in samples) / n,
        empty=sum(not s.text.strip() for s in samples) / n,
        mean_words=statistics.mean(len(words(s.text)) for s in samples),
    )


@dataclass
class Loaded:
    """What every measure works from: the model (copy guard off), the splits and the candidate values."""

    config: EvalConfig
    gen: Generator
    train: list[Record]
    held: list[Record]
    held_name: str
    guard: CopyGuard  # measures copying; never filters
    candidates: dict[tuple[str, str], list[str]]


def load(config: EvalConfig) -> Loaded:
    """Load the checkpoint and the prepared splits; pick the tag values to judge and rank."""
    train, held, held_name = _splits(config.data)
    gen = Generator.load(
        config.checkpoint,
        GenerateConfig(precision=config.precision, device=config.device, max_attempts=1, min_chars=0),
    )
    # Copying is measured before the guard: evaluation sees what the model does, not what we filter.
    guard = gen.guard or CopyGuard(build_index(r.text for r in train))
    gen.guard = None
    return Loaded(config, gen, train, held, held_name, guard, candidate_values(gen.card, config, held))


def likelihood_measures(s: Loaded) -> tuple[Perplexity, dict[str, TagId]]:
    """Held-out perplexity, and likelihood tag-ID for each judged tag: what the model itself believes."""
    model, tokenizer = s.gen.backend.model, s.gen.backend.tokenizer
    scorer = nll_scorer(model, s.config.batch_size)
    block = int(s.gen.card.training.get("block_size") or model.config.max_position_embeddings)
    rendering = s.gen.card.rendering
    log.info("perplexity on %d %s examples", len(s.held), s.held_name)
    tag_ids = {
        f"{k}/{t}": tag_id(
            tag_id_cases([r for r in s.held if r.kind == k], t, values, s.config.tag_id_examples),
            tokenizer,
            scorer,
            s.config.tag_id_tokens,
            rendering,
        )
        for (k, t), values in s.candidates.items()
    }
    return perplexity(s.held, tokenizer, scorer, block, rendering), tag_ids


def generation_measures(s: Loaded, judges_cache: Path) -> Generation:
    """Generate for every condition at each guidance scale and with the tags removed (the floor); judge,
    check copying and diversity against real text."""
    config, card = s.config, s.gen.card
    scored = "review" in card.kinds and config.wants("review")
    wanted: dict = dict(s.candidates) | ({("review", "score"): None} if scored else {})
    judges = load_or_fit(judges_cache, fingerprint(s.train), wanted, s.train, config.judges)
    conds = [c for c in conditions(card, s.candidates) if config.wants(c.kind)]
    scales = list(config.guidance) or sorted({1.0, *(card.guidance(k) for k in card.kinds)})
    base = Sampling(**card.generation.get("sampling", {}))
    if config.max_new_tokens:
        base = replace(base, max_new_tokens=config.max_new_tokens)
    log.info(
        "generating %d samples per condition x %d conditions x %d scales (+ floor)",
        config.samples,
        len(conds),
        len(scales),
    )
    # Each kind as the card samples it (contrast, repetition penalty), unless the config says otherwise.
    bases = {
        k: card_sampling(card, k, base, None, config.contrast, config.repetition_penalty) for k in card.kinds
    }
    floor = sample(s.gen, conds, config.samples, bases, None, config.seed)
    generated = {
        scale: sample(s.gen, conds, config.samples, bases, scale, config.seed, config.candidates)
        for scale in scales
    }
    return Generation(
        guidance=scales,
        default_guidance={k: card.guidance(k) for k in card.kinds},
        contrast={k: b.contrast for k, b in bases.items()},
        repetition_penalty={k: b.repetition_penalty for k, b in bases.items()},
        samples=Samples(config.samples, len(conds)),
        by_guidance={
            f"{scale:g}": _at_scale(texts, floor, judges, s.held, s.guard, s.train)
            for scale, texts in generated.items()
        },
        floor=Floor(sum(x.result.stop == "end" for x in floor) / max(1, len(floor))),
        real_diversity=diversity(_real_groups(generated[scales[0]], s.train)),
        texts={f"{scale:g}": [x.text for x in texts] for scale, texts in generated.items()},
    )


def evaluate(
    config: EvalConfig, rated: list[dict[str, Any]] | None = None, cached: dict[str, list[str]] | None = None
) -> EvalReport:
    """Evaluate one checkpoint into ``config.out``; ``rated``/``cached`` come from the bot's database."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    loaded = load(config)
    ppl, tag_ids = likelihood_measures(loaded)
    report = EvalReport(
        model_id=loaded.gen.card.model_id,
        checkpoint=str(config.checkpoint),
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        config=config.to_dict(),
        held_out=HeldOut(loaded.held_name, len(loaded.held)),
        perplexity=ppl,
        tag_id=tag_ids,
        generation=generation_measures(loaded, out / "judges.joblib"),
        ratings=approval(rated) if rated is not None else None,
        cache_duplicates=duplicate_share(cached.values()) if cached is not None else None,
    )
    report.plots = plots.draw(report, out, loaded.gen.card, config.sweep)
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=float) + "\n")
    write_markdown(report, out / "report.md")
    return report
