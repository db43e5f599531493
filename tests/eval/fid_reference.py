"""Reference figures from pytorch-fid and torch-fidelity, for tests/eval/test_fid_reference.py.

Those packages need torchvision, which this project does not install, so they run in a side
environment and their outputs are committed (``fid_reference.npz``). Regenerate with a Python
that has torch, torchvision, pytorch-fid and torch-fidelity (e.g. the anchors' venv)::

    /work/anchors-venv/bin/python tests/eval/fid_reference.py tests/eval/fid_reference.npz

The inputs are made here from fixed seeds, and the test makes the same ones:
- feature arrays for FID, KID and IS (``features``);
- Inception weights: every tensor of pytorch-fid's FID network filled by ``fill_weights`` (no
  weights file is committed, and nothing is downloaded), and two images run through it.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

N1, N2, DIM = 1100, 1050, 24  # two feature sets; more than the 1,000 of a KID subset
KID_SUBSETS = 10
IS_N, IS_CLASSES, IS_SPLITS = 300, 12, 7  # 300 rows in 7 splits: unequal splits on purpose
IMAGE_SIZE = 48


def features() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(18)
    mix = rng.normal(size=(DIM, DIM)) / np.sqrt(DIM)
    f1 = rng.normal(size=(N1, DIM)) @ mix
    f2 = rng.normal(size=(N2, DIM)) @ (mix + 0.2 * rng.normal(size=(DIM, DIM)) / np.sqrt(DIM)) + 0.3
    logits = 2 * rng.normal(size=(IS_N, IS_CLASSES))
    images = rng.uniform(size=(2, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    return {"f1": f1, "f2": f2, "logits": logits, "images": images}


def fill_weights(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic weights for every tensor named in ``shapes``, in sorted name order: He-scaled
    convolution and linear weights, batch-norm statistics near the identity."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if name.endswith("num_batches_tracked"):
            out[name] = torch.zeros((), dtype=torch.long)
        elif name.endswith("running_var"):
            out[name] = 0.5 + torch.rand(shape, generator=g)
        elif name.endswith("running_mean"):
            out[name] = 0.1 * torch.randn(shape, generator=g)
        elif name.endswith("bn.weight"):
            out[name] = 1 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            out[name] = torch.randn(shape, generator=g) * (2 / fan_in) ** 0.5
        else:
            out[name] = 0.1 * torch.randn(shape, generator=g)
    return out


def _pytorch_fid_network() -> torch.nn.Module:
    """pytorch-fid's FID Inception with ``fill_weights`` instead of the downloaded file."""
    from pytorch_fid import inception

    def no_download(url, progress=True):
        model = inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        for name, block in (("Mixed_5b", inception.FIDInceptionA(192, 32)),
                            ("Mixed_5c", inception.FIDInceptionA(256, 64)),
                            ("Mixed_5d", inception.FIDInceptionA(288, 64)),
                            ("Mixed_6b", inception.FIDInceptionC(768, 128)),
                            ("Mixed_6c", inception.FIDInceptionC(768, 160)),
                            ("Mixed_6d", inception.FIDInceptionC(768, 160)),
                            ("Mixed_6e", inception.FIDInceptionC(768, 192)),
                            ("Mixed_7b", inception.FIDInceptionE_1(1280)),
                            ("Mixed_7c", inception.FIDInceptionE_2(2048))):  # fmt: skip
            setattr(model, name, block)
        return fill_weights({k: tuple(v.shape) for k, v in model.state_dict().items()})

    inception.load_state_dict_from_url = no_download
    return inception.fid_inception_v3().eval()


def main(out: str) -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric

    data = features()
    f1, f2 = data["f1"], data["f2"]
    mu1, s1 = f1.mean(0), np.cov(f1, rowvar=False)
    mu2, s2 = f2.mean(0), np.cov(f2, rowvar=False)
    # torch-fidelity's defaults (cubic kernel, gamma 1/d, subsets of 1,000, seed 2020) but fewer subsets
    kid = kid_features_to_metric(torch.from_numpy(f1), torch.from_numpy(f2), kid_subsets=KID_SUBSETS,
                                 verbose=False)  # fmt: skip
    isc = isc_features_to_metric(torch.from_numpy(data["logits"]), splits=IS_SPLITS)

    # the FID network, run as pytorch-fid's InceptionV3 wrapper runs its blocks
    net = _pytorch_fid_network()
    x = torch.nn.functional.interpolate(torch.from_numpy(data["images"]), size=(299, 299),
                                        mode="bilinear", align_corners=False)  # fmt: skip
    x = 2 * x - 1
    with torch.no_grad():
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                     "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
                     "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b",
                     "Mixed_7c", "avgpool"):  # fmt: skip
            x = getattr(net, name)(x)
        pool = torch.flatten(x, 1)
        logits = net.fc(pool)
    np.savez(
        out,
        fid=calculate_frechet_distance(mu1, s1, mu2, s2),
        kid=kid["kernel_inception_distance_mean"],
        kid_std=kid["kernel_inception_distance_std"],
        isc=isc["inception_score_mean"],
        isc_std=isc["inception_score_std"],
        pool=pool.numpy(),
        inception_logits=logits.numpy(),
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1])
