"""Scale-free windows: every window normalised by statistics of its own input part.

``x_n = (x - x_last) / s`` and ``y_n = (y - x_last) / s``, with ``x_last`` the window's last input value
and ``s`` the mean absolute step of its input (the in-window naive MAE). Why (benchmarks/RESULTS.md,
"Forecast quality v2"): a per-series scaler fit on the training part cannot bound a series that keeps
trending (its recent windows leave the range the network saw), and unscaled inputs mix units. A window
normalised by its own inputs is the same whatever the series' level or unit, uses no value after the
origin (neuralforecast's ``TemporalNorm`` "uses only the lags"; DeepAR divides by the context's mean),
and a series the model never saw is forecast like any other. An MAE on ``y_n`` is a scale-free MAE,
close to the MASE the gate and the benchmark score.

Ensembles (``ModelConfig.members``): the model's output is ``[batch, members * n_out]`` (member k's
forecast in columns ``k * n_out .. (k + 1) * n_out``), trained against the target tiled ``members``
times (the mean of the members' own losses); the forecast is the member median.

The same TensorFlow functions run inside the tf.data training pipeline and inside the compiled
prediction function, so training and forecasting normalise identically, bit for bit.
"""

from __future__ import annotations

__all__ = ["SCALE_FLOOR", "normalise_inputs", "normalise_targets", "denormalise", "member_median", "window_transform"]

# s never falls below this fraction of the window's mean |x| (nor below 1e-8): a flat window (constant
# series, a run of zeros) would otherwise divide by zero. With s tiny, forecasts stay at x_last.
SCALE_FLOOR = 1e-3


def normalise_inputs(x):
    """``x``: ``[batch, input_size, 1]`` -> ``(x_n [batch, input_size, 1], last [batch, 1], scale [batch, 1])``."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x, tf.float32)
    last = x[:, -1, :]  # [batch, 1]
    level = tf.reduce_mean(tf.abs(x), axis=1)  # [batch, 1]
    if x.shape[1] is not None and x.shape[1] < 2:  # one input step: no step to measure
        step = tf.zeros_like(level)
    else:
        step = tf.reduce_mean(tf.abs(x[:, 1:, :] - x[:, :-1, :]), axis=1)  # [batch, 1]
    scale = tf.maximum(step, SCALE_FLOOR * level + 1e-8)  # [batch, 1]
    return (x - last[:, None, :]) / scale[:, None, :], last, scale


def normalise_targets(y, last, scale):
    """``y``: ``[batch, h]`` in the window's units -> ``[batch, h]`` normalised like its inputs."""
    return (y - last) / scale


def denormalise(y_n, last, scale):
    """``[batch, h]`` normalised forecasts -> the window's units."""
    return y_n * scale + last


def member_median(y, members: int):
    """``[batch, members * n_out]`` -> ``[batch, n_out]``: the median over members (mean of the two middle
    ones for an even count). Members are combined by the median, not the mean, because one member that
    diverged on a window must not move the forecast (N-BEATS combines its ensemble the same way)."""
    import tensorflow as tf

    if members == 1:
        return y
    per = tf.reshape(y, [tf.shape(y)[0], members, -1])  # [batch, members, n_out]
    ranked = tf.sort(per, axis=1)  # [batch, members, n_out]
    mid = members // 2
    if members % 2:
        return ranked[:, mid, :]  # [batch, n_out]
    return 0.5 * (ranked[:, mid - 1, :] + ranked[:, mid, :])  # [batch, n_out]


def window_transform(normalise: bool, members: int, own: bool = False):
    """``(x [batch, input_size, 1], y [batch, h]) -> (x', y')`` as the model trains on them: normalised
    per window when ``normalise``; for an ensemble the target tiled once per member, or with ``own``
    (the trainer of model.build_ensemble; ``batch`` a multiple of ``members``) the batch split between
    the members: member k gets windows ``k * b .. (k + 1) * b`` as its input channel k and its targets."""
    import tensorflow as tf

    def transform(x, y):
        y = tf.convert_to_tensor(y, tf.float32)
        if normalise:
            x, last, scale = normalise_inputs(x)
            y = normalise_targets(y, last, scale)
        if members > 1 and own:
            steps, h = x.shape[1], y.shape[1]
            x = tf.transpose(tf.reshape(x, [members, -1, steps]), [1, 2, 0])  # [b, input_size, members]
            y = tf.transpose(tf.reshape(y, [members, -1, h]), [1, 0, 2])  # [b, members, h]
            y = tf.reshape(y, [-1, members * h])  # [b, members * h]
        elif members > 1:
            y = tf.tile(y, [1, members])  # [batch, members * h]
        return x, y

    return transform
