#!/usr/bin/env python3
"""Builds the example's Keras model, deterministically, at image build time.

    python3 build_model.py /opt/ml/model/model.keras

The model is a small MLP, 4 inputs -> 64 (tanh) -> 1, that approximates
    y = sin(x0) + x1 * x2 - 0.5 * x3        on [-2, 2]^4   (rmse about 0.09)
The hidden layer's weights are drawn from a fixed-seed generator (random
features); the output layer is fitted to 4,096 generated samples by least
squares in float64. No stochastic training, so the same weights come out on every
machine and every build, and a golden input has a golden output (the e2e tests
check one). Saved in Keras' own format (.keras: config + weights in one zip).
"""
import sys

import numpy as np

INPUTS = 4
HIDDEN = 64
SEED = 20261130


def target(x):
    return np.sin(x[:, 0]) + x[:, 1] * x[:, 2] - 0.5 * x[:, 3]


def weights():
    """(w1, b1, w2, b2) as float32, the same on every run."""
    rng = np.random.default_rng(SEED)
    w1 = rng.normal(0.0, 0.3, (INPUTS, HIDDEN))
    b1 = rng.normal(0.0, 1.0, HIDDEN)
    x = rng.uniform(-2.0, 2.0, (4096, INPUTS))
    h = np.tanh(x @ w1.astype(np.float32).astype(np.float64) + b1.astype(np.float32))
    design = np.hstack([h, np.ones((len(h), 1))])
    # Ridge-regularised least squares: well conditioned, one solution, and small
    # coefficients (|c| < 6), so float32 rounding stays far below 1e-5.
    coef = np.linalg.solve(design.T @ design + 0.1 * np.eye(HIDDEN + 1), design.T @ target(x))
    rmse = float(np.sqrt(np.mean((design @ coef - target(x)) ** 2)))
    return (w1.astype(np.float32), b1.astype(np.float32),
            coef[:HIDDEN, None].astype(np.float32), coef[HIDDEN:].astype(np.float32)), rmse


def main(path):
    import keras  # noqa: PLC0415 - after numpy: the heavy import only when building

    model = keras.Sequential([
        keras.Input(shape=(INPUTS,), name="x"),
        keras.layers.Dense(HIDDEN, activation="tanh", name="features"),
        keras.layers.Dense(1, name="y"),
    ], name="kai_example_mlp")
    ws, rmse = weights()
    model.set_weights(list(ws))
    model.save(path)
    print(f"saved {path}: {model.count_params()} parameters, fit rmse {rmse:.4f}, keras {keras.__version__}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_model.py OUTPUT.keras")
    main(sys.argv[1])
