"""The FID Inception network: shapes, and loading weights only from a tensors-only state dict."""

import pickle

import pytest
import torch

from dalle.models.inception import FIDInception, load_fid_inception


def test_features_and_logits_and_a_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    model = FIDInception().eval()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        features, logits = model(images)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    path = tmp_path / "weights.pth"
    torch.save(model.state_dict(), path)
    loaded = load_fid_inception(path)
    with torch.no_grad():
        again, _ = loaded(images)
    torch.testing.assert_close(again, features)


def test_bad_weight_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="pt_inception-2015-12-05"):
        load_fid_inception(tmp_path / "missing.pth")

    class Payload:  # what a malicious pickle would carry: never rebuilt
        def __reduce__(self):
            return (print, ("pickle code ran",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(ValueError, match="not a PyTorch state dict"):
        load_fid_inception(tmp_path / "evil.pth")
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not the FID Inception weights"):
        load_fid_inception(tmp_path / "other.pth")
