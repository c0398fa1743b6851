"""The report of an A/B experiment: quality with confidence intervals, paired tests, cost, the Pareto chart,
the judge's verdicts and recommendations derived from the numbers, as Markdown and as offline HTML.

The recommendation rules are a pure function (:func:`recommend`) of each variant's summary and the
significance of the F1 differences (:class:`Comparison`), so they can be tested on hand-made numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from engine.ab.charts import latency_figure, pareto_figure, quality_figure
from engine.ab.document import Document
from engine.ab.recommend import (
    ALPHA,
    SIGNIFICANCE_TEST,
    Comparison,
    Recommendation,
    comparisons_from,
    em_fraction,
    mean_interval,
    percent_interval,
    recommend,
)
from engine.ab.results import check_paired, experiments_dir
from engine.benchmark.selection import pareto_front
from engine.errors import InputError
from engine.evaluation.judge import JudgeResult
from engine.settings import Settings
from engine.stats import compare_variants, sensitivity
from engine.write_policy import write_atomic


@dataclass(frozen=True)
class VariantQuality:
    """One variant's mean EM (percent) and F1 with their bootstrap intervals."""

    name: str
    n: int
    em: tuple[float, float, float]
    f1: tuple[float, float, float]


@dataclass(frozen=True)
class Report:
    """The experiment report: ``markdown`` and self-contained ``html`` (plotly.js embedded, no network),
    with the numbers behind them."""

    experiment_id: str
    reference: str
    markdown: str = field(repr=False)
    html: str = field(repr=False)
    quality: dict[str, VariantQuality]
    summaries: dict[str, dict[str, float]]
    comparisons: list[Comparison]
    recommendations: list[Recommendation]
    pareto: list[str]
    paired: object = field(default=None, repr=False, compare=False)  # the full paired tests (not saved)

    def to_dict(self) -> dict:
        """The report as JSON data (without ``paired``: the tables and the text hold what it found)."""
        return {k: v for k, v in asdict(self).items() if k != "paired"}

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        return cls(
            **{
                **data,
                "quality": {
                    n: VariantQuality(name=q["name"], n=q["n"], em=tuple(q["em"]), f1=tuple(q["f1"]))
                    for n, q in data["quality"].items()
                },
                "comparisons": [Comparison(**c) for c in data["comparisons"]],
                "recommendations": [Recommendation(**r) for r in data["recommendations"]],
            }
        )


def _ci(t: tuple[float, float, float], digits: int = 1) -> str:
    mean, low, high = t
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _pv(p: float) -> str:
    return "n/a" if not math.isfinite(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _num(x: float, digits: int = 2) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def build_report(
    result,
    judge=None,
    reference: str | None = None,
    alpha: float = ALPHA,
    resamples: int = 10_000,
    seed: int = 0,
    paired=None,
) -> Report:
    """The report of ``result`` (an :class:`engine.ab.results.ExperimentResult`): ``reference`` (default: the
    first variant) is what the others are compared with; ``judge`` (a :class:`engine.evaluation.judge.JudgeResult`,
    or a list of them, one per judged pair) adds the judge's verdicts. ``paired``: the paired tests, when they were
    computed already (:func:`engine.ab.runner.compare_result`, with the same reference)."""
    names = list(result.variants)
    if not names:
        raise InputError(f"Experiment {result.id!r} has no variants to report on.")
    reference = reference or names[0]
    if reference not in result.variants:
        raise InputError(f"The reference {reference!r} is not a variant of {result.id!r}: {', '.join(names)}.")
    check_paired(result)
    variants = result.variants
    n_items = len(result.item_ids())
    summaries = {n: variants[n].summary() for n in names}
    f1 = {n: variants[n].scores("f1") for n in names}
    em = {n: em_fraction(variants[n].scores("em")) for n in names}
    quality = {
        n: VariantQuality(
            name=n,
            n=len(f1[n]),
            em=percent_interval(mean_interval(em[n], resamples=resamples, seed=seed)),
            f1=mean_interval(f1[n], resamples=resamples, seed=seed),
        )
        for n in names
    }
    for n in names:  # the report shows EM in percent whatever the rows' scale
        summaries[n]["em"] = quality[n].em[0]
    if paired is None and len(names) >= 2 and n_items >= 2:
        paired = compare_variants(f1, em, reference, alpha, resamples, seed)
    comparisons = comparisons_from(paired) if paired else []
    recs = recommend(summaries, comparisons, alpha)
    points = {n: (summaries[n]["f1"], -summaries[n]["latency_p50_s"], summaries[n]["peak_memory_gb"]) for n in names}
    front = pareto_front(points)

    doc = Document()
    title = f"Experiment report: {result.id}"
    doc.h(1, title)
    doc.p(
        f"{len(names)} variants ({', '.join(names)}) answered the same {n_items} items; the reference is "
        f"**{reference}**. Differences are *variant minus reference* (in a label `X vs Y`: X minus Y)."
    )
    if result.created:
        doc.p(f"Created {result.created}" + (f"; MLflow run `{result.run_id}`." if result.run_id else "."))

    recommendations_section(doc, recs)

    quality_section(doc, quality, comparisons, em, reference)

    paired_section(doc, paired, alpha)

    latency_section(doc, summaries, variants, front)
    doc.figure(quality_figure(quality, reference))
    doc.figure(pareto_figure(summaries, front))
    doc.figure(latency_figure(variants))

    doc.h(2, "Judge")
    judges = [] if judge is None else [judge] if isinstance(judge, JudgeResult) else list(judge)
    for found in judges:
        judge_section(doc, found, len(judges) > 1)
    if not judges:
        doc.p("No judge was run for this experiment.")

    md = Document([b for b in doc.blocks if b[0] != "figure"])
    md.p("Charts (per-variant F1, the Pareto chart of F1 against p50 latency, latency distributions): see report.html.")
    return Report(
        experiment_id=result.id,
        reference=reference,
        markdown=md.markdown(),
        html=doc.html(title),
        quality=quality,
        summaries=summaries,
        comparisons=comparisons,
        recommendations=recs,
        pareto=front,
        paired=paired,
    )


def recommendations_section(doc: Document, recs: list[Recommendation]) -> None:
    """Which variant to deploy for each goal, and the rules that chose it."""
    doc.h(2, "Recommendations")
    doc.ul(
        [
            f"**{r.goal}**: {r.variant or 'none'}" + (f" (prefer {r.prefer})" if r.prefer else "") + f". {r.reason}"
            for r in recs
        ]
    )
    doc.p("Rules: " + " ".join(f"*{r.goal}*: {r.rule}" for r in recs))


def quality_section(
    doc: Document, quality: dict[str, VariantQuality], comparisons: list[Comparison], em: dict, reference: str
) -> None:
    """Each variant's EM and F1 with intervals, and its difference from the reference."""
    doc.h(2, "Quality")
    ref_comp = {c.b if c.a == reference else c.a: c for c in comparisons if reference in (c.a, c.b)}
    rows = []
    for n in quality:
        q = quality[n]
        if n == reference:
            diff_f1, diff_em = "reference", "reference"
        else:
            c = ref_comp[n] if n in ref_comp else None
            diff_f1 = f"{c.gain(n):+.1f} [{c.low:+.1f}, {c.high:+.1f}]" if c else "n/a"
            diff_em = f"{100 * (sum(em[n]) - sum(em[reference])) / max(1, q.n):+.1f}"
        rows.append([n, str(q.n), _ci(q.em), _ci(q.f1), diff_f1, diff_em])
    doc.table(
        [
            "variant",
            "items",
            "EM % [95% CI]",
            "F1 [95% CI]",
            f"ΔF1 vs {reference} [95% CI]",
            f"ΔEM vs {reference} (points)",
        ],
        rows,
    )
    doc.p(
        "Per-variant intervals: BCa bootstrap of the item scores (scipy). Differences: paired BCa bootstrap of "
        "the per-item F1 differences (items resampled with both variants' scores kept together)."
    )


def paired_section(doc: Document, paired, alpha: float) -> None:
    """The paired tests of each comparison (Holm-adjusted where there are several), and their sensitivity."""
    multi = paired is not None and len(paired.comparisons) > 1
    doc.h(2, "Paired tests")
    if paired is None:
        doc.p("Paired tests need at least two variants and two items.")
    else:
        headers = ["comparison", "ΔF1 [95% CI]", "McNemar p (EM)"] + (["Holm p"] if multi else [])
        headers += ["odds ratio"] + ["Wilcoxon p"] + (["Holm p"] if multi else []) + ["rank-biserial r"]
        headers += ["permutation p"] + (["Holm p"] if multi else []) + ["Cohen's d_z", f"significant (α={alpha})"]
        rows = []
        for label, comp in paired.comparisons.items():
            row = [label, f"{comp.bootstrap.mean:+.1f} [{comp.bootstrap.low:+.1f}, {comp.bootstrap.high:+.1f}]"]
            for test in ("mcnemar", "wilcoxon", "permutation"):
                t = comp.tests[test]
                row.append(_pv(t.p_value))
                if multi:
                    row.append(_pv(paired.adjusted[test][label].adjusted))
                row.append(_num(t.effect))
            row.append("yes" if paired.adjusted[SIGNIFICANCE_TEST][label].reject else "no")
            rows.append(row)
        doc.table(headers, rows)
        if multi:
            family = (
                f"Holm p: each test's p-values over the {len(paired.comparisons)} comparisons form one family, "
                "corrected with Holm's step-down method. "
            )
        else:
            family = "With two variants there is one comparison, so no correction for multiple comparisons is needed. "
        doc.p(
            "McNemar's exact test on the 0/1 exact matches (effect: discordant odds ratio, above 1 when the first-"
            "named variant fixes more than it breaks); Wilcoxon signed-rank and the paired permutation test on "
            "per-item F1 (effects: rank-biserial correlation and Cohen's d_z, positive when the first-named is "
            f"higher). {family}*Significant*: the {SIGNIFICANCE_TEST} test's "
            f"{'Holm-adjusted ' if multi else ''}p below {alpha}."
        )

        sensitivity_section(doc, paired, alpha)


def latency_section(doc: Document, summaries: dict, variants: dict, front: list[str]) -> None:
    """Latency, memory and the Pareto front."""
    doc.h(2, "Latency and memory")
    rows = [
        [
            n,
            _num(s["latency_p50_s"], 3),
            _num(s["latency_p95_s"], 3),
            _num(s["new_tokens"], 1),
            _num(s["load_s"], 1),
            _num(s["peak_memory_gb"]),
            _num(s["weights_gb"]),
            variants[n].device,
            "yes" if n in front else "no",
        ]
        for n, s in summaries.items()
    ]
    doc.table(
        [
            "variant",
            "p50 latency (s)",
            "p95 latency (s)",
            "new tokens",
            "load (s)",
            "peak memory (GB)",
            "weights (GB)",
            "device",
            "Pareto-optimal",
        ],
        rows,
    )
    doc.p(
        f"Pareto-optimal (no other variant has at least the F1, at most the p50 latency and at most the peak "
        f"memory, and is better on one): {', '.join(front)}."
    )


def sensitivity_section(doc: Document, paired, alpha: float, power: float = 0.8) -> None:
    """How sensitive each comparison was: the power of a paired t-test against the observed effect, the items
    that effect needs, and the smallest F1 difference these items detect (at this spread of differences)."""
    rows = []
    for label, comp in paired.comparisons.items():
        t = comp.tests["t"]
        found = sensitivity(t.effect, t.n, alpha, power)
        sd = float(t.detail.get("sd_diff", math.nan))
        needed = "—" if found.items_needed is None else str(found.items_needed)
        rows.append(
            [
                label,
                _num(found.effect_dz),
                _num(100 * found.power, 0) + "%",
                needed,
                f"{found.detectable_dz:.2f} (≈ {_num(found.detectable_dz * sd, 1)} F1 points)",
            ]
        )
    doc.h(3, "Sensitivity")
    doc.table(
        [
            "comparison",
            "observed d_z",
            "power at this effect",
            f"items for {power:.0%} power",
            f"smallest d_z detectable with {power:.0%} power",
        ],
        rows,
    )
    doc.p(
        f"Power of a two-sided paired t-test at α={alpha} (statsmodels TTestPower) on the per-item F1 "
        "differences. A comparison without a significant difference and with low power says little either "
        "way; more items would tell."
    )


def judge_section(doc: Document, judge: JudgeResult, titled: bool) -> None:
    """What a local judge said of one pair of variants, with its position bias."""
    js = judge.summary()
    if titled:
        doc.h(3, f"{judge.b} vs {judge.a}")
    model = f" ({js['model']})" if js.get("model") else ""
    doc.p(
        f"A local model{model} judged {js['judged']} of {js['items']} item pairs twice, once in each order "
        f"(identical answers count as ties without a judgement); a verdict stands only when it picks the "
        f"same answer in both orders."
    )
    outcomes = [
        [f"{judge.a} preferred", str(judge.wins_a)],
        [f"{judge.b} preferred", str(judge.wins_b)],
        ["tie", str(judge.ties)],
    ]
    doc.table(["judge's verdict", "items"], outcomes)
    flip, pos1 = judge.flip_rate, judge.position_1_rate
    doc.p(
        f"Position-flip rate {_num(100 * flip, 0)}% (judged items whose verdict followed the position rather "
        f"than the answer); position 1 picked in {_num(100 * pos1, 0)}% of the decisive judgements; "
        f"{js['unparsed']} unreadable replies (read as ties)."
    )
    if judge.follows_positions:
        doc.p("**Caution**: the judge mostly follows the answers' positions, so its verdicts say little.")


def log_report(tracker, run_id: str, report: Report) -> None:
    """Log the report to MLflow run ``run_id`` as the artifacts ``report.md`` and ``report.html``."""
    tracker.log_text(run_id, report.markdown, "report.md")
    tracker.log_text(run_id, report.html, "report.html")


REPORT_FILE = "report.json"


def save_report(report: Report, settings: Settings) -> None:
    """Keep the report beside its experiment: the page and the downloads read it, never recompute it."""
    write_atomic(experiments_dir(settings) / report.experiment_id / REPORT_FILE, json.dumps(report.to_dict()))


def experiment_report(result, settings: Settings, judges=()) -> Report:
    """The saved report of ``result``, else (an experiment from before reports were saved) built now with its
    saved ``judges`` and saved."""
    path = experiments_dir(settings) / result.id / REPORT_FILE
    if path.is_file():
        return Report.from_dict(json.loads(path.read_text(encoding="utf-8")))
    report = build_report(result, judge=list(judges) or None)
    save_report(report, settings)
    return report
