"""The digit examples run end to end in a short mode, and their training loss falls."""

import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name, epochs", [("mlp_digits", 3), ("cnn_digits", 2),
                                          ("gru_digits", 2)])
def test_example_trains(name, epochs):
    result = load(name).main(epochs=epochs, verbose=False)
    losses = np.array(result["losses"])
    n_train = 1498 if name == "gru_digits" else 5 * 1498  # MLP and CNN add shifted copies
    assert len(losses) == epochs * (n_train // 64)
    assert np.isfinite(losses).all()
    assert losses[-10:].mean() < 0.6 * losses[:10].mean()
    assert result["test_accuracy"] > 0.5  # ten classes: chance is 0.1
