"""``linernotes prepare``: read sources, clean, filter, dedupe, split, and write the prepared dataset."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linernotes.common.errors import InputError
from linernotes.data.clean import clean_text, clean_value, dedupe_key, exact_key
from linernotes.data.config import DataConfig
from linernotes.data.dedupe import THRESHOLD, NearDuplicates
from linernotes.data.format import FORMAT_VERSION, Record
from linernotes.data.problems import SourceError
from linernotes.data.readers import Item, ReaderOptions, ReadReport, detect, expand_sources
from linernotes.data.splits import SPLITS, assign_split, write_split
from linernotes.data.stats import TokenCounter, tag_counts

log = logging.getLogger(__name__)

# Why a duplicate was dropped (the reasons stats.json and the summary count).
IDENTICAL = "duplicate (identical text)"
FOLDED = "duplicate (same text up to case, punctuation and spacing)"
NEAR = f"near duplicate (word-pair Jaccard >= {THRESHOLD} with a kept text)"
NEAR_PLAIN = "nearly the same as a kept text"


@dataclass
class PrepareResult:
    """What a prepare run produced: the splits, the per-source reports, and the stats written."""

    splits: dict[str, list[Item]]
    reports: list[ReadReport]
    pipeline: ReadReport  # drops after reading: cleaning, length, duplicates
    stats: dict[str, Any] = field(default_factory=dict)

    def plain_dropped(self) -> Counter[str]:
        """Drops of every stage by reason, worded without CLI options (for people who can change only the data)."""
        dropped: Counter[str] = Counter()
        for report in [*self.reports, self.pipeline]:
            dropped.update(report.plain_dropped())
        return dropped


def read_sources(config: DataConfig) -> tuple[list[Item], list[ReadReport]]:
    """Read every source with its detected reader; files in directories that fit no reader are skipped."""
    opts = ReaderOptions(config.mapping, config.min_helpful, config.artist, config.chunk_lines, config.titles)
    named = [Path(s) for s in config.sources]
    items: list[Item] = []
    reports: list[ReadReport] = []
    for source in named:
        paths, skipped = expand_sources([source])
        from_dir = source.is_dir() and paths != [source]
        for path in paths:
            try:
                reader = detect(path, config.kind, config.format)
            except InputError as e:
                if not from_dir:
                    raise
                skipped.append(f"{path}: {e}".replace(f"{path}: {path}: ", f"{path}: "))
                continue
            report = ReadReport(str(path), reader.name)
            items.extend(reader.read(path, opts, report))
            reports.append(report)
        if skipped:
            skip = ReadReport(str(source), "skipped")
            skip.warnings.extend(skipped)
            reports.append(skip)
    return items, reports


def clean_and_filter(
    items: list[Item], config: DataConfig, count: TokenCounter
) -> tuple[list[Item], ReadReport]:
    """Clean every text, apply length filters and remove duplicates; drops are counted by reason."""
    report = ReadReport("pipeline", "clean/filter/dedupe")
    seen: dict[str, str] = {}
    near = NearDuplicates() if config.dedupe == "near" else None
    out: list[Item] = []
    for item in items:
        r = item.record
        report.rows += 1
        text = clean_text(r.text, lowercase=config.lowercase, fix_run_on=r.kind != "lyrics")
        if not text:
            report.drop("empty after cleaning", item.source)
            continue
        problem = _length_problem(text, config, count)
        if problem:
            report.drop(problem[0], item.source, plain=problem[1])
            continue
        if config.dedupe != "none" and (duplicate := _duplicate(text, item.source, config, seen, near)):
            report.drop(*duplicate, plain=NEAR_PLAIN if duplicate[0] == NEAR else None)
            continue
        tags = {k: clean_value(v) if isinstance(v, str) and k != "part" else v for k, v in r.tags.items()}
        report.kept += 1
        out.append(Item(Record(r.kind, tags, text), item.source, item.group or f"text#{dedupe_key(text)}"))
    return out, report


def _duplicate(
    text: str, source: str, config: DataConfig, seen: dict[str, str], near: NearDuplicates | None
) -> tuple[str, str] | None:
    """(reason, where) when ``text`` repeats a kept text under ``config.dedupe``; else it is remembered."""
    key = exact_key(text) if config.dedupe == "exact" else dedupe_key(text)
    if key in seen:
        return (IDENTICAL if config.dedupe == "exact" else FOLDED), f"{source} = {seen[key]}"
    if near is not None and (twin := near.match(source, text)):
        return NEAR, f"{source} ~ {twin[0]} (similarity {twin[1]:.2f})"
    seen[key] = source
    return None


def _length_problem(text: str, config: DataConfig, count: TokenCounter) -> tuple[str, str] | None:
    """(reason naming the option, the same without it) when ``text`` is too short or too long."""
    problem = None
    if len(text) < config.min_chars:
        problem = f"shorter than {config.min_chars} characters", "--min-chars"
    elif len(text) > config.max_chars:
        problem = f"longer than {config.max_chars} characters", "--max-chars"
    elif config.min_tokens is not None or config.max_tokens is not None:
        tokens = count(text)
        if config.min_tokens is not None and tokens < config.min_tokens:
            problem = f"fewer than {config.min_tokens} tokens", "--min-tokens"
        elif config.max_tokens is not None and tokens > config.max_tokens:
            problem = f"more than {config.max_tokens} tokens", "--max-tokens"
    return (f"{problem[0]} ({problem[1]})", problem[0]) if problem else None


def split_items(items: list[Item], config: DataConfig) -> dict[str, list[Item]]:
    """Assign splits by group (one song, one review); training is never left empty.

    A split by song needs songs to spare: when every text shares one group (one song) or no group
    landed in training, the texts are split one by one instead (a song's sections then straddle
    splits); when even that leaves training empty (a text or two), everything trains.
    """
    by_group = len({i.group for i in items}) > 1
    splits = _assign(items, config, by_group)
    if by_group and items and not splits["train"]:
        splits = _assign(items, config, by_group=False)
    if items and not splits["train"]:
        splits = {s: list(items) if s == "train" else [] for s in SPLITS}
    return splits


def _assign(items: list[Item], config: DataConfig, by_group: bool) -> dict[str, list[Item]]:
    """Assign splits by group, or by text; a kept duplicate, exact or near, follows its first copy's split."""
    splits: dict[str, list[Item]] = {s: [] for s in SPLITS}
    by_text: dict[str, str] = {}
    assigned: dict[str, str] = {}  # item number -> split
    # Near duplicates are only kept when --dedupe is not "near"; only then are they looked for here.
    near = NearDuplicates(remember_matches=True) if config.dedupe != "near" else None
    for n, item in enumerate(items):
        key = dedupe_key(item.record.text)
        split = by_text.get(key)
        if split is None and near is not None and (twin := near.match(str(n), item.record.text)):
            split = assigned[twin[0]]
        group = item.group if by_group else f"text#{key}"
        split = split or assign_split(group, config.val_fraction, config.test_fraction)
        by_text.setdefault(key, split)
        assigned[str(n)] = split
        splits[split].append(item)
    return splits


def prepare(config: DataConfig) -> PrepareResult:
    """Run the whole data stage and write ``train/val/test.jsonl`` and ``stats.json`` to ``config.out``."""
    count = TokenCounter(config.tokenizer)
    raw, reports = read_sources(config)
    items, pipeline = clean_and_filter(raw, config, count)
    result = PrepareResult(split_items(items, config), reports, pipeline)
    result.stats = build_stats(result, config, count)
    if not items:
        dropped = result.plain_dropped()
        why = ", ".join(f"{n} {reason}" for reason, n in dropped.most_common()) or "no records found"
        raise SourceError(
            "no usable records were produced:\n" + summary(result), f"nothing in it is usable ({why})"
        )
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, split_items_ in result.splits.items():
        write_split(out / f"{split}.jsonl", split_items_)
    (out / "stats.json").write_text(json.dumps(result.stats, indent=2, ensure_ascii=False) + "\n")
    return result


def build_stats(result: PrepareResult, config: DataConfig, count: TokenCounter) -> dict[str, Any]:
    """The dictionary written to ``stats.json``."""
    dropped: Counter[str] = Counter()
    for report in [*result.reports, result.pipeline]:
        dropped.update(report.dropped)
    tokens = {s: sum(count(i.record.text) for i in items) for s, items in result.splits.items()}
    all_items = [i for items in result.splits.values() for i in items]
    return {
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "rows_read": sum(r.rows for r in result.reports),
        "kept": len(all_items),
        "dropped": dict(dropped.most_common()),
        "splits": {s: len(items) for s, items in result.splits.items()},
        "tokens": tokens,
        "tokens_counted_with": count.label,
        "tags": tag_counts(all_items),
        "sources": [r.as_dict() for r in result.reports] + [result.pipeline.as_dict()],
    }


def summary(result: PrepareResult) -> str:
    """A human-readable account of the run: per reader rows/kept/dropped, tags, splits."""
    s = result.stats
    lines = []
    by_reader: dict[str, list[ReadReport]] = {}
    for report in result.reports:
        by_reader.setdefault(report.reader, []).append(report)
    for reader, reports in by_reader.items():
        lines.extend(_reader_lines(reader, reports))
    p = result.pipeline
    for reason, n in p.dropped.most_common():
        lines.append(f"after reading, dropped {n:,}: {reason} (e.g. {p.where[reason][0]})")
    lines.append(f"kept {s.get('kept', 0):,} of {s.get('rows_read', 0):,} rows read")
    for kind, tags in s.get("tags", {}).items():
        lines.append(f"  {kind}: {tags['examples']:,} examples")
        for key, counts in tags.items():
            if key != "examples":
                shown = ", ".join(f"{v} {n}" for v, n in list(counts.items())[:12])
                more = f", ... ({len(counts)} values)" if len(counts) > 12 else ""
                lines.append(f"    {key}: {shown}{more}")
    if "splits" in s:
        split_text = ", ".join(f"{k} {v:,} ({s['tokens'][k]:,} tokens)" for k, v in s["splits"].items())
        lines.append(f"splits: {split_text}; tokens {s['tokens_counted_with']}")
    return "\n".join(lines)


def _reader_lines(reader: str, reports: list[ReadReport]) -> list[str]:
    if reader == "skipped":
        return [f"skipped: {w}" for r in reports for w in r.warnings]
    rows, kept = sum(r.rows for r in reports), sum(r.kept for r in reports)
    dropped: Counter[str] = Counter()
    tallies: dict[str, Counter[str]] = {}
    for r in reports:
        dropped.update(r.dropped)
        for topic, c in r.tallies.items():
            tallies.setdefault(topic, Counter()).update(c)
    files = f"{len(reports)} files" if len(reports) > 1 else reports[0].source
    lines = [f"{reader} ({files}): {rows:,} rows, kept {kept:,}"]
    for reason, n in dropped.most_common():
        where = next((r.where[reason][0] for r in reports if reason in r.where), "")
        lines.append(f"  dropped {n:,}: {reason} (e.g. {where})")
    for topic, c in tallies.items():
        lines.append(f"  {topic}: " + ", ".join(f"{k} x{v}" for k, v in c.most_common(8)))
    for note in dict.fromkeys(n for r in reports for n in r.notes):
        lines.append(f"  note: {note}")
    lines.extend(f"  warning: {w}" for r in reports for w in r.warnings)
    return lines
