"""Plain PyTorch: one Distribution per layer's weights, biases and their gradients."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aim_core.integrations.pytorch import model_layers  # noqa: E402


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                           torch.nn.Linear(8, 3, bias=False))
        self.head = torch.nn.Linear(3, 1)


def test_layer_names_follow_aim():
    layers = model_layers(Net(), "data")
    assert list(layers) == ["encoder.Sequential__0.Linear", "encoder.Sequential__1.ReLU",
                            "encoder.Sequential__2.Linear", "head.Linear"]
    assert set(layers["encoder.Sequential__0.Linear"]) == {"weight", "bias"}
    assert set(layers["encoder.Sequential__2.Linear"]) == {"weight"}
    assert layers["encoder.Sequential__1.ReLU"] == {}


def test_gradients_appear_after_backward():
    torch.manual_seed(0)
    net = Net()
    assert all(not v for v in model_layers(net, "grad").values())
    loss = net.head(net.encoder(torch.randn(5, 4))).sum()
    loss.backward()
    grads = model_layers(net, "grad")
    assert np.allclose(grads["head.Linear"]["bias"].numpy(), [5.0])
    assert set(grads["encoder.Sequential__0.Linear"]) == {"weight", "bias"}
