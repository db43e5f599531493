"""Issue 18: our FID, KID, IS and FID Inception against pytorch-fid and torch-fidelity.

Their figures on the same inputs were computed in a side environment (they need torchvision) by
``fid_reference.py`` beside this file, and committed in ``fid_reference.npz``.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from dalle.eval import fid
from dalle.models.inception import FIDInception, load_fid_inception

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("fid_reference", HERE / "fid_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(HERE / "fid_reference.npz"))


def test_frechet_distance_kid_and_is_match_pytorch_fid_and_torch_fidelity(expected):
    data = ref.features()
    mu1, s1 = fid.statistics(data["f1"])
    mu2, s2 = fid.statistics(data["f2"])
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(float(expected["fid"]), rel=1e-6)
    kid, kid_std = fid.kernel_inception_distance(data["f1"], data["f2"], subsets=ref.KID_SUBSETS)
    assert kid == pytest.approx(float(expected["kid"]), rel=1e-6)
    assert kid_std == pytest.approx(float(expected["kid_std"]), rel=1e-6)
    logits = data["logits"]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    score, score_std = fid.inception_score(p, splits=ref.IS_SPLITS)
    assert score == pytest.approx(float(expected["isc"]), rel=1e-6)
    assert score_std == pytest.approx(float(expected["isc_std"]), rel=1e-6)


def test_our_inception_matches_pytorch_fids_network_on_the_same_weights_file(expected, tmp_path):
    shapes = {k: tuple(v.shape) for k, v in FIDInception().state_dict().items()}
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(ref.fill_weights(shapes), path)
    net = load_fid_inception(path)
    images = torch.from_numpy(ref.features()["images"])
    with torch.no_grad():
        pool, logits = net(images)
    want_pool = torch.from_numpy(expected["pool"])
    want_logits = torch.from_numpy(expected["inception_logits"])
    assert pool.shape == want_pool.shape == (2, 2048)
    assert want_pool.abs().max() > 0.1  # the random network does not collapse to zeros
    torch.testing.assert_close(pool, want_pool, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits, want_logits, rtol=1e-4, atol=1e-4)
