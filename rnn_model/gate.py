"""The promotion gate: is the challenger really better than the champion and than seasonal naive?

Two rules make the comparison fair and robust to noise (benchmarks/RESULTS.md, "Promotion gate"):

* **No home advantage.** The champion is scored only on held-out windows that start after the last
  target its own fit saw (``trained_through`` in its bundle's meta.json: the end of its validation
  horizons, or of all its data when it was refitted). Windows it trained on would flatter it; where no
  such window exists the decision says "not comparable" and the champion stays.
* **Several origins, a paired rule.** Both models are scored on the same windows (up to
  ``test_windows`` horizons per series), and the challenger must beat the champion's mean MASE by the
  larger of ``margin`` (relative) and ``z`` standard errors of the mean paired difference over
  (series, window) units: a difference inside the noise of these windows does not promote.

The challenger must also beat seasonal naive (mean MASE over all its held-out windows), since that is
what the pipeline writes without a champion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["PromotionDecision", "decide_promotion", "paired_comparison", "judge", "ds_to_json", "Z_ONE_SIDED"]

Z_ONE_SIDED = 1.645  # one-sided 95 %: the improvement must exceed 1.645 standard errors of the mean difference
MIN_UNITS_FOR_NOISE = 3  # below this many (series, window) units the standard error is not estimated


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    challenger_mase: float | None = None
    champion_mase: float | None = None
    seasonal_naive_mase: float | None = None
    evidence: dict = field(default_factory=dict)  # the rule and its numbers (decision.json, the UI card)

    def to_markdown(self, version: str) -> str:
        verdict = "**promoted to champion**" if self.promote else "**not promoted**"
        lines = [f"### Challenger `{version}`: {verdict}", ""]
        lines += [f"- {r}" for r in self.reasons]
        if self.evidence:
            lines += ["", "| evidence | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in self.evidence.items()]
        return "\n".join(lines)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def ds_to_json(value) -> str | int | None:
    """A ``ds`` value as meta.json stores it: ISO text for timestamps, int for integer steps."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    return pd.Timestamp(value).isoformat()


def _parse_ds(value):
    return value if isinstance(value, int) else pd.Timestamp(value)


def decide_promotion(
    challenger_mase: float,
    seasonal_naive_mase: float,
    champion_mase: float | None,
    margin: float,
    forecasts_complete: bool,
    required: float | None = None,
    challenger_vs_champion: float | None = None,
) -> PromotionDecision:
    """The scalar rule: finite and complete forecasts, beat seasonal naive, beat the champion.

    Against the champion the challenger must be below ``champion_mase - max(margin * champion_mase,
    required)``: ``margin`` is relative, ``required`` an absolute bar from the noise of the comparison
    (see :func:`judge`). ``challenger_vs_champion``: the challenger's MASE on the windows the champion
    is scored on, when those are fewer than all held-out windows (default: ``challenger_mase``)."""
    reasons: list[str] = []
    bars = {"seasonal_naive_bar": seasonal_naive_mase}  # what the challenger's MASE had to stay below
    ok = True
    if not forecasts_complete or not math.isfinite(challenger_mase):
        ok = False
        reasons.append("challenger forecasts are not finite and complete on the held-out windows")
    if math.isfinite(challenger_mase) and challenger_mase < seasonal_naive_mase:
        reasons.append(f"beats seasonal naive: MASE {challenger_mase:.4f} < {seasonal_naive_mase:.4f}")
    else:
        ok = False
        reasons.append(f"does not beat seasonal naive: MASE {challenger_mase:.4f} >= {seasonal_naive_mase:.4f}")
    if champion_mase is None:
        reasons.append("no current champion")
    else:
        mine = challenger_mase if challenger_vs_champion is None else challenger_vs_champion
        gap = max(margin * champion_mase, required or 0.0)
        bar = bars["champion_bar"] = champion_mase - gap
        why = f"{margin:.1%}" if gap == margin * champion_mase else f"{gap:.4f} (the noise bar)"
        if mine < bar:
            reasons.append(
                f"beats the champion by more than {why}: MASE {mine:.4f} < {bar:.4f} (champion {champion_mase:.4f})"
            )
        else:
            ok = False
            reasons.append(
                f"does not beat the champion by {why}: MASE {mine:.4f} >= {bar:.4f} (champion {champion_mase:.4f})"
            )
    return PromotionDecision(ok, reasons, challenger_mase, champion_mase, seasonal_naive_mase, bars)


def _unit_mase(forecasts: pd.DataFrame, scales: pd.Series, model: str) -> pd.Series:
    """Scaled MAE of one model per (unique_id, cutoff) window."""
    rows = forecasts[forecasts["model"] == model]
    ae = (rows["y_hat"] - rows["y"]).abs() / rows["unique_id"].map(scales).astype(float)
    return ae.groupby([rows["unique_id"], rows["cutoff"]]).mean()


def paired_comparison(forecasts: pd.DataFrame, scales: pd.Series, base: str, other: str) -> dict:
    """``base`` and ``other`` on the same (series, window) units: their mean MASE, the mean paired
    improvement ``base - other`` and its standard error (NaN with fewer than 3 units)."""
    a, b = _unit_mase(forecasts, scales, base), _unit_mase(forecasts, scales, other)
    both = pd.concat({"a": a, "b": b}, axis=1).dropna()
    both = both[np.isfinite(both).all(axis=1)]
    d = (both["a"] - both["b"]).to_numpy()
    n = len(d)
    se = float(d.std(ddof=1) / math.sqrt(n)) if n >= MIN_UNITS_FOR_NOISE else float("nan")
    series = both.index.get_level_values(0).nunique() if n else 0
    return {
        "windows": int(n),
        "series": int(series),
        "base_mase": float(both["a"].mean()) if n else float("nan"),
        "other_mase": float(both["b"].mean()) if n else float("nan"),
        "improvement": float(d.mean()) if n else float("nan"),
        "se": se,
    }


def judge(
    forecasts: pd.DataFrame,
    scales: pd.Series,
    margin: float,
    champion_through=None,
    notes: Sequence[str] = (),
    challenger: str = "challenger",
    z: float = Z_ONE_SIDED,
) -> PromotionDecision:
    """The gate on a backtest frame (:func:`rnn_model.evaluation.backtest` of challenger, seasonal naive
    and, when there is one, ``champion``). ``champion_through``: the last target the champion's fit saw
    (``None`` when unknown: a bundle written before this rule, which is then not compared)."""
    notes = list(notes)
    mine = forecasts[forecasts["model"] == challenger]
    if mine.empty:  # no held-out window had fully observed inputs and targets
        reason = "no held-out window is fully observed (gaps or NaN at the end of every series): nothing to judge"
        return PromotionDecision(False, [reason, *notes])
    per_model = forecasts.assign(
        sae=(forecasts["y_hat"] - forecasts["y"]).abs() / forecasts["unique_id"].map(scales).astype(float)
    )
    by_series = per_model.groupby(["model", "unique_id"])["sae"].mean()
    overall = by_series.groupby(level=0).mean()
    complete = bool(mine["covered"].all() and np.isfinite(mine["y_hat"]).all())
    evidence: dict = {
        "rule": f"paired per (series, window): improvement > max(margin x champion MASE, {z} x SE)",
        "margin": margin,
        "z": z,
        "held_out_windows": int(mine.groupby(["unique_id", "cutoff"]).ngroups),
    }
    champion_mase = required = mine_vs_champion = None
    if "champion" in overall.index and champion_through is None:
        notes.append(
            "champion not compared: its bundle does not record which data it trained on "
            "(written before the fair-comparison rule)"
        )
    elif "champion" in overall.index:
        fair = forecasts[forecasts["cutoff"] >= _parse_ds(champion_through)]
        cmp = paired_comparison(fair, scales, "champion", challenger)
        evidence.update(
            champion_trained_through=str(champion_through),
            fair_windows=cmp["windows"],
            fair_series=cmp["series"],
            champion_fair_mase=cmp["base_mase"],
            challenger_fair_mase=cmp["other_mase"],
            improvement=cmp["improvement"],
            se=cmp["se"],
        )
        if cmp["windows"] == 0:
            reason = (
                f"not comparable: every held-out window starts before the end of the champion's training "
                f"data ({champion_through}), so it would be scored on data it trained on; the champion stays"
            )
            return PromotionDecision(
                False,
                [reason, *notes],
                float(overall[challenger]),
                None,
                float(overall["seasonal_naive"]),
                _finite(evidence),
            )
        champion_mase, mine_vs_champion = cmp["base_mase"], cmp["other_mase"]
        if np.isfinite(cmp["se"]):
            required = evidence["noise_bar"] = z * cmp["se"]
        else:
            notes.append(f"only {cmp['windows']} comparable window(s): the noise is not estimated, margin only")
        if cmp["improvement"] == 0.0:
            notes.append("tie: challenger and champion score the same on the comparable windows")
    decision = decide_promotion(
        float(overall[challenger]),
        float(overall["seasonal_naive"]),
        champion_mase,
        margin,
        complete,
        required,
        mine_vs_champion,
    )
    return PromotionDecision(
        decision.promote,
        [*decision.reasons, *notes],
        decision.challenger_mase,
        champion_mase,
        decision.seasonal_naive_mase,
        _finite({**evidence, **decision.evidence}),
    )


def _finite(evidence: dict) -> dict:
    """NaN (no window, too few to estimate the noise) becomes null: decision.json stays strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in evidence.items()}
