"""What ``linernotes eval`` measured, as types: read by the report, the plots, ``--compare`` and the bench."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from linernotes.training.eval.adherence import Adherence
from linernotes.training.eval.copying import Copying
from linernotes.training.eval.diversity import Diversity, Duplicates
from linernotes.training.eval.likelihood import Perplexity, TagId
from linernotes.training.eval.ratings import Approval


@dataclass(frozen=True)
class AtScale:
    """Every measure of the texts generated at one guidance scale."""

    adherence: dict[str, Adherence]  # "kind/tag" -> the judge's reading
    copying: Copying
    diversity: Diversity
    clean_stops: float  # share of texts that ended at the end marker
    header_leaks: float
    empty: float
    mean_words: float


@dataclass(frozen=True)
class Samples:
    """How many texts were generated: per condition, and the number of conditions."""

    per_condition: int
    conditions: int


@dataclass(frozen=True)
class Floor:
    """The unconditioned generations (tags removed), beyond what each judge reads from them."""

    clean_stops: float


@dataclass(frozen=True)
class HeldOut:
    """The split evaluated on: test, or val when the prepared data has no test examples."""

    split: str
    examples: int


@dataclass(frozen=True)
class Generation:
    """The generation measures: the scales compared, each scale's measures, the floor and real text."""

    guidance: list[float]
    default_guidance: dict[str, float]  # the card's scale per kind
    samples: Samples
    by_guidance: dict[str, AtScale]  # f"{scale:g}" -> measures
    floor: Floor
    real_diversity: Diversity  # real text of the same tags, cut to the generated length
    contrast: dict[str, float] = field(default_factory=dict)  # the contrast weight per kind, at every scale
    # The repetition penalty per kind, at every scale and the floor.
    repetition_penalty: dict[str, float] = field(default_factory=dict)
    # f"{scale:g}" -> the generated texts, condition by condition (for measures computed outside, e.g.
    # fluency); kept out of report.json, which holds figures.
    texts: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def last_scale(self) -> str:
        """The scale the headline figures, plots and worst copies come from: the last one asked for."""
        return f"{self.guidance[-1]:g}"

    @property
    def last(self) -> AtScale:
        """The measures at ``last_scale``."""
        return self.by_guidance[self.last_scale]


@dataclass
class EvalReport:
    """One checkpoint's evaluation: what was evaluated, the likelihood and generation measures."""

    model_id: str
    checkpoint: str
    created: str
    config: dict[str, Any]
    held_out: HeldOut
    perplexity: Perplexity
    tag_id: dict[str, TagId]  # "kind/tag" -> ranking
    generation: Generation
    ratings: list[Approval] | None = None  # with the bot's database
    cache_duplicates: Duplicates | None = None  # with the bot's database
    plots: dict[str, str] = field(default_factory=dict)  # name -> file beside report.json

    def to_dict(self) -> dict[str, Any]:
        """``report.json``: every figure, with the generation measures at the top level."""
        out = asdict(self)
        out |= out.pop("generation")
        out.pop("texts")
        return {k: v for k, v in out.items() if v is not None}
