"""The promotion gate on backtest frames: fair windows only, several origins, a paired rule with a noise bar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnn_model.gate import ds_to_json, judge, paired_comparison

H = 4


def frame(errors: dict[str, list[list[float]]], cutoffs=("2026-01-01", "2026-01-05", "2026-01-09")) -> pd.DataFrame:
    """A backtest frame: per model, per window (one series, origins at ``cutoffs``), a constant absolute
    error per window (y = 0, y_hat = error)."""
    rows = []
    for model, per_window in errors.items():
        for uid_i, windows in enumerate(per_window):
            for cutoff, err in zip(cutoffs, windows):
                for k in range(H):
                    rows.append(
                        {
                            "unique_id": f"s{uid_i}",
                            "cutoff": pd.Timestamp(cutoff),
                            "horizon_step": k + 1,
                            "y": 0.0,
                            "y_hat": float(err),
                            "model": model,
                            "covered": True,
                        }
                    )
    return pd.DataFrame(rows)


def scales(n: int) -> pd.Series:
    return pd.Series(1.0, index=[f"s{i}" for i in range(n)])


def test_identical_models_tie_and_the_champion_stays():
    errs = [[0.5, 0.6, 0.7], [0.4, 0.5, 0.3]]
    f = frame({"challenger": errs, "champion": errs, "seasonal_naive": [[1, 1, 1], [1, 1, 1]]})
    d = judge(f, scales(2), margin=0.01, champion_through="2025-12-31")
    assert not d.promote
    assert any(r.startswith("tie") for r in d.reasons), d.reasons
    assert d.evidence["improvement"] == 0.0 and d.evidence["fair_windows"] == 6


def test_the_champion_is_scored_only_after_its_training_data():
    # The champion is perfect on the first window (it trained on it) and worse than the challenger after.
    f = frame(
        {"challenger": [[0.5, 0.5, 0.5]] * 2, "champion": [[0.0, 0.6, 0.6]] * 2, "seasonal_naive": [[1, 1, 1]] * 2}
    )
    unfair = paired_comparison(f, scales(2), "champion", "challenger")
    assert unfair["base_mase"] < unfair["other_mase"]  # on all windows the champion would look better
    d = judge(f, scales(2), margin=0.01, champion_through="2026-01-02")
    assert d.evidence["fair_windows"] == 4 and d.evidence["champion_fair_mase"] == pytest.approx(0.6)
    assert d.promote, d.reasons


def test_no_window_after_the_champions_training_data_is_not_comparable():
    f = frame({"challenger": [[0.1, 0.1, 0.1]], "champion": [[0.9, 0.9, 0.9]], "seasonal_naive": [[1, 1, 1]]})
    d = judge(f, scales(1), margin=0.01, champion_through="2026-01-20")
    assert not d.promote and d.reasons[0].startswith("not comparable"), d.reasons
    assert d.evidence["fair_windows"] == 0


def test_a_champion_without_a_recorded_training_end_is_not_compared():
    f = frame({"challenger": [[0.5, 0.5, 0.5]], "champion": [[0.1, 0.1, 0.1]], "seasonal_naive": [[1, 1, 1]]})
    d = judge(f, scales(1), margin=0.01, champion_through=None)
    assert d.promote and d.champion_mase is None
    assert any("does not record which data it trained on" in r for r in d.reasons)


def test_an_improvement_inside_the_noise_does_not_promote():
    # Mean improvement 0.05 (5 % of 1.0, beyond the 1 % margin), but the paired differences swing by +-0.5.
    champ = [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    chall = [[0.45, 1.5, 0.45], [1.5, 0.45, 1.35]]
    f = frame({"challenger": chall, "champion": champ, "seasonal_naive": [[2, 2, 2]] * 2})
    d = judge(f, scales(2), margin=0.01, champion_through="2025-12-31")
    assert d.evidence["improvement"] == pytest.approx(0.05)
    assert d.evidence["noise_bar"] > 0.05
    assert not d.promote and any("noise bar" in r for r in d.reasons), d.reasons
    # the same mean improvement, consistent on every window, promotes
    steady = frame({"challenger": [[0.95] * 3] * 2, "champion": champ, "seasonal_naive": [[2, 2, 2]] * 2})
    assert judge(steady, scales(2), margin=0.01, champion_through="2025-12-31").promote


def test_the_challenger_must_beat_seasonal_naive_on_all_its_windows():
    f = frame({"challenger": [[1.2, 1.2, 1.2]], "seasonal_naive": [[1.0, 1.0, 1.0]]})
    d = judge(f, scales(1), margin=0.01)
    assert not d.promote and any(r.startswith("does not beat seasonal naive") for r in d.reasons)


def test_ds_is_stored_as_json_text_or_int():
    assert ds_to_json(np.datetime64("2026-01-05T03:00")) == "2026-01-05T03:00:00"
    assert ds_to_json(np.int64(17)) == 17 and ds_to_json(None) is None
