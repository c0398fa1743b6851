"""The plotly charts of an A/B report: per-variant F1 with intervals, the quality-cost Pareto chart, latency."""

from __future__ import annotations

import plotly.graph_objects as go


def quality_figure(quality: dict, reference: str):
    """Mean F1 per variant with its interval (``quality``: name -> VariantQuality)."""
    names = list(quality)
    f1 = [quality[n].f1 for n in names]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=[m for m, _, _ in f1],
            text=[f"{m:.1f}" for m, _, _ in f1],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [h - m for m, _, h in f1],
                "arrayminus": [m - lo for m, lo, _ in f1],
            },
            marker_color=["#636efa" if n != reference else "#888" for n in names],
        )
    )
    fig.update_layout(title="Mean F1 per variant (95% bootstrap CI)", yaxis_title="F1", height=380)
    return fig


def pareto_figure(summaries: dict[str, dict[str, float]], front: list[str]):
    """F1 against p50 latency, marker size peak memory; the Pareto-optimal variants starred."""
    mem = {n: s["peak_memory_gb"] for n, s in summaries.items()}
    top = max(mem.values()) if mem and max(mem.values()) > 0 else 0.0

    def size(n: str) -> float:
        return 16.0 if top <= 0 else 12.0 + 36.0 * mem[n] / top

    fig = go.Figure()
    for optimal in (True, False):
        chosen = [n for n in summaries if (n in front) == optimal]
        if not chosen:
            continue
        fig.add_trace(
            go.Scatter(
                x=[summaries[n]["latency_p50_s"] for n in chosen],
                y=[summaries[n]["f1"] for n in chosen],
                mode="markers+text",
                text=chosen,
                textposition="top center",
                name="Pareto-optimal" if optimal else "dominated",
                marker={
                    "size": [size(n) for n in chosen],
                    "symbol": "star" if optimal else "circle",
                    "color": "#ef553b" if optimal else "#8c8c8c",
                    "line": {"width": 1, "color": "#333"},
                },
                customdata=[[mem[n]] for n in chosen],
                hovertemplate="%{text}<br>p50 %{x:.3f} s<br>F1 %{y:.1f}<br>peak memory %{customdata[0]:.2f} GB"
                "<extra></extra>",
            )
        )
    fig.update_layout(
        title="Quality vs cost: F1 against p50 latency (marker size: peak memory)",
        xaxis_title="p50 latency per item (s)",
        yaxis_title="F1",
        height=420,
    )
    return fig


def latency_figure(variants) -> object:
    """The distribution of per-item latency of each variant."""
    fig = go.Figure([go.Box(y=v.scores("latency_s"), name=n, boxpoints=False) for n, v in variants.items()])
    fig.update_layout(title="Latency per item", yaxis_title="seconds", height=380, showlegend=False)
    return fig
