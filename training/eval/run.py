"""``evaluate``: every measure on one checkpoint, written as ``report.json``, ``report.md`` and plots."""

from __future__ import annotations

import datetime as dt
import json
import logging
import statistics
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from data.errors import InputError
from data.format import Record
from data.splits import read_split
from model.card import Card
from model.copyguard import CopyGuard, build_index, words
from model.generator import GenerateConfig, Generator
from model.sampling import Sampling
from training.dataset import fingerprint
from training.eval import plots
from training.eval.adherence import adherence
from training.eval.conditions import Sample, conditions, sample
from training.eval.config import EvalConfig
from training.eval.copying import copying
from training.eval.diversity import diversity, duplicate_share, truncate_words
from training.eval.judges import CLASSIFIED, load_or_fit
from training.eval.likelihood import nll_scorer, perplexity, tag_id, tag_id_cases
from training.eval.ratings import approval
from training.eval.report import write_markdown

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
    for kind in card.kinds:
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


def _per_scale(samples: list[Sample], floor: list[Sample], judges, held, guard, train) -> dict[str, Any]:
    groups: dict[str, list[str]] = defaultdict(list)
    for s in samples:
        groups[_group_key(s)].append(s.text)
    n = len(samples)
    return {
        "adherence": {f"{k}/{t}": adherence(j, samples, floor, held) for (k, t), j in judges.items()},
        "copying": copying([s.text for s in samples], guard, [r.text for r in train]),
        "diversity": diversity(dict(groups)),
        "clean_stops": sum(s.result.stop == "end" for s in samples) / n,
        "header_leaks": sum("<|" in s.text or "|>" in s.text for s in samples) / n,
        "empty": sum(not s.text.strip() for s in samples) / n,
        "mean_words": statistics.mean(len(words(s.text)) for s in samples),
    }


def evaluate(
    config: EvalConfig, rated: list[dict[str, Any]] | None = None, cached: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """Evaluate one checkpoint into ``config.out``; ``rated``/``cached`` come from the bot's database."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    train, held, held_name = _splits(config.data)
    gen = Generator.load(
        config.checkpoint,
        GenerateConfig(precision=config.precision, device=config.device, max_attempts=1, min_chars=0),
    )
    # Copying is measured before the guard: evaluation sees what the model does, not what we filter.
    guard = gen.guard or CopyGuard(build_index(r.text for r in train))
    gen.guard = None
    model, tokenizer = gen.backend.model, gen.backend.tokenizer
    scorer = nll_scorer(model, config.batch_size)
    block = int(gen.card.training.get("block_size") or model.config.n_positions)
    candidates = candidate_values(gen.card, config, held)
    log.info("perplexity on %d %s examples", len(held), held_name)
    report: dict[str, Any] = {
        "model_id": gen.card.model_id,
        "checkpoint": str(config.checkpoint),
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "config": config.to_dict(),
        "held_out": {"split": held_name, "examples": len(held)},
        "perplexity": perplexity(held, tokenizer, scorer, block),
        "tag_id": {
            f"{k}/{t}": tag_id(
                tag_id_cases([r for r in held if r.kind == k], t, values, config.tag_id_examples),
                tokenizer,
                scorer,
                config.tag_id_tokens,
            )
            for (k, t), values in candidates.items()
        },
    }
    wanted: dict = dict(candidates) | ({("review", "score"): None} if "review" in gen.card.kinds else {})
    judges = load_or_fit(out / "judges.joblib", fingerprint(train), wanted, train)
    conds = conditions(gen.card, candidates)
    default = float(gen.card.generation.get("guidance", 1.0))
    scales = list(config.guidance) or sorted({1.0, default})
    base = Sampling(**gen.card.generation.get("sampling", {}))
    if config.max_new_tokens:
        base = replace(base, max_new_tokens=config.max_new_tokens)
    log.info(
        "generating %d samples per condition x %d conditions x %d scales (+ floor)",
        config.samples,
        len(conds),
        len(scales),
    )
    floor = sample(gen, conds, config.samples, base, None, config.seed)
    report |= {
        "guidance": scales,
        "default_guidance": default,
        "samples": {"per_condition": config.samples, "conditions": len(conds)},
    }
    report["by_guidance"] = {}
    generated = {}
    for scale in scales:
        generated[scale] = sample(gen, conds, config.samples, base, scale, config.seed)
        report["by_guidance"][f"{scale:g}"] = _per_scale(generated[scale], floor, judges, held, guard, train)
    report["floor"] = {"clean_stops": sum(s.result.stop == "end" for s in floor) / max(1, len(floor))}
    report["real_diversity"] = diversity(_real_groups(generated[scales[0]], train))
    if rated is not None:
        report["ratings"] = approval(rated)
    if cached is not None:
        report["cache_duplicates"] = duplicate_share(cached.values())
    report["plots"] = plots.draw(report, out, gen.card, config.sweep)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    write_markdown(report, out / "report.md")
    return report
