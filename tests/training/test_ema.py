"""The weights' moving average, with its warm-up."""

import pytest
import torch
from torch import nn

from dalle.training.ema import EMA


def test_ema_decay_warms_up_then_holds():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.99)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, step=0)  # decay min(0.99, 1/10): 0.9 of the way to the model
    assert ema.state_dict()["weight"].item() == pytest.approx(0.9)
    ema.update(model, step=5)  # decay 6/15 = 0.4
    assert ema.state_dict()["weight"].item() == pytest.approx(1 - 0.1 * 0.4)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema.update(model, step=10_000)  # past the warm-up: the configured decay
    assert ema.state_dict()["weight"].item() == pytest.approx((1 - 0.04) * 0.99)
    ema.update(model)  # no step: the decay as given
    assert ema.state_dict()["weight"].item() == pytest.approx((1 - 0.04) * 0.99 * 0.99)
