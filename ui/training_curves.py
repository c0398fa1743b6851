"""The live curves of a training run: loss, validation, and preference training's rewards."""

import pandas as pd
import plotly.express as px
import streamlit as st

from engine.finetune.curve import read_curve

REWARDS = ("rewards_chosen", "rewards_rejected", "rewards_margins")


def curves(run_dir) -> None:
    rows = read_curve(run_dir)
    if not rows:
        st.caption("No training step yet.")
        return
    frame = pd.DataFrame(rows)
    left, right = st.columns(2)
    if "loss" in frame:
        train = frame.dropna(subset=["loss"])
        long = train.melt("step", ["loss"], "curve", "value")
        if "eval_loss" in frame:
            long = pd.concat([long, frame.dropna(subset=["eval_loss"]).melt("step", ["eval_loss"], "curve", "value")])
        fig = px.line(long, x="step", y="value", color="curve", markers=True, title="Loss")
        left.plotly_chart(fig, width="stretch")
    if "eval_f1" in frame:
        val = frame.dropna(subset=["eval_f1"])
        right.plotly_chart(
            px.line(val, x="step", y=["eval_f1", "eval_em"], markers=True, title="Validation"), width="stretch"
        )
    if "rewards_margins" in frame:  # DPO and ORPO: the reference-relative rewards of the chosen and rejected answers
        rewards = frame.dropna(subset=["rewards_margins"])
        cols = st.columns(2)
        cols[0].plotly_chart(
            px.line(rewards, x="step", y=[c for c in REWARDS if c in rewards], title="Rewards (train)"), width="stretch"
        )
        if "rewards_accuracies" in rewards:
            cols[1].plotly_chart(
                px.line(rewards, x="step", y="rewards_accuracies", title="Pairs ranked right (train)"), width="stretch"
            )
