"""The papers' augmentations: VGG's scale jittering and AlexNet's PCA lighting."""

import pytest
import torch
import torch.nn.functional as F

from convzoo.data.photometric import (
    lighting_offsets,
    pca_lighting,
    rgb_covariance,
    rgb_eigen,
    sample_lighting,
    sample_scale_jitter,
    scale_jitter,
)
from convzoo.errors import UserInputError


def known_covariance() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    lam = torch.tensor([0.02, 0.005, 0.001], dtype=torch.float64)
    return q @ torch.diag(lam) @ q.T, lam, q


def test_eigen_decomposition_of_a_known_covariance():
    cov, lam, q = known_covariance()
    vals, vecs = rgb_eigen(covariance=cov)
    torch.testing.assert_close(vals.double(), lam, rtol=1e-5, atol=1e-7)
    for i in range(3):  # the same axes, up to sign
        assert abs(float(vecs[:, i].double() @ q[:, i])) == pytest.approx(1.0, abs=1e-5)
        assert vecs[vecs[:, i].abs().argmax(), i] > 0


def test_covariance_and_eigen_from_images():
    cov, lam, _ = known_covariance()
    g = torch.Generator().manual_seed(1)
    chol = torch.linalg.cholesky(cov)
    pixels = 0.5 + (chol @ torch.randn(3, 200 * 16 * 16, generator=g, dtype=torch.float64))
    images = pixels.view(3, 200, 16, 16).permute(1, 0, 2, 3).float()
    torch.testing.assert_close(rgb_covariance(images, chunk=37), cov, rtol=0.05, atol=2e-4)
    vals, _ = rgb_eigen(images)
    torch.testing.assert_close(vals.double(), lam, rtol=0.05, atol=2e-4)
    as_bytes = (images * 255).round().clamp(0, 255).to(torch.uint8)  # the 0..1 scale either way
    torch.testing.assert_close(rgb_covariance(as_bytes), cov, rtol=0.05, atol=3e-4)


@pytest.mark.parametrize("magnitude,power", [("eigenvalue", 2), ("sqrt", 1)])
def test_lighting_offset_statistics(magnitude, power):
    cov, _, _ = known_covariance()
    vals, vecs = rgb_eigen(covariance=cov * 50)  # eigenvalues near 1, so both forms differ
    sigma, n = 0.1, 40_000
    alphas = sample_lighting(n, sigma, torch.Generator().manual_seed(2))
    off = lighting_offsets(alphas, vals, vecs, magnitude).double()
    want = sigma ** 2 * (vecs.double() * vals.double() ** power) @ vecs.double().T
    got = torch.cov(off.T)
    assert off.mean(0).abs().max() < 4 * sigma * float(vals.max()) / n ** 0.5
    torch.testing.assert_close(got, want, rtol=0.05, atol=0.03 * float(want.abs().max()))


def test_pca_lighting_adds_one_offset_per_image():
    x = torch.full((2, 3, 4, 4), 100, dtype=torch.uint8)
    off = torch.tensor([[0.01, -0.02, 0.0], [0.5, 0.5, -0.5]])
    y = pca_lighting(x, off)
    assert y.dtype == torch.uint8
    assert y[0, :, 0, 0].tolist() == [103, 95, 100]  # 255 x 0.01 = 2.55 -> 3
    assert y[1].amax(dim=(1, 2)).tolist() == [228, 228, 0]  # clamped to 0..255
    f = pca_lighting(x.float() / 255, off)  # a float batch on the 0..1 scale
    torch.testing.assert_close(f[0, :, 2, 3], torch.tensor([100 / 255 + 0.01, 100 / 255 - 0.02,
                                                            100 / 255]))
    with pytest.raises(UserInputError):
        pca_lighting(torch.zeros(1, 1, 4, 4), off[:1])


def test_scale_jitter_sizes_and_range():
    g = torch.Generator().manual_seed(3)
    h, w, crop, s_min, s_max = 30, 40, 16, 20, 32
    boxes, s = sample_scale_jitter(500, h, w, crop, s_min, s_max, g)
    assert s.min() >= s_min and s.max() <= s_max and len(set(s.tolist())) > 8
    top, left, bh, bw = boxes.unbind(1)
    rh = (h * s.double() / min(h, w)).round()  # the rescaled image's height
    torch.testing.assert_close(bh.double(), crop * h / rh, rtol=1e-5, atol=1e-5)
    assert (bh.double() * s / min(h, w) - crop).abs().max() < 0.5  # a crop of the rescaled
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + bh <= h + 1e-4).all() and (left + bw <= w + 1e-4).all()
    x = torch.randint(0, 256, (500, 3, h, w), dtype=torch.uint8)
    out = scale_jitter(x, boxes, crop)
    assert out.shape == (500, 3, crop, crop) and out.dtype == torch.uint8
    with pytest.raises(UserInputError):
        sample_scale_jitter(1, h, w, crop=24, s_min=20, s_max=32, g=g)


def test_scale_jitter_is_rescale_then_crop():
    """At S = 2 x the side, jittering equals resizing the image to S and cutting the crop."""
    g = torch.Generator().manual_seed(4)
    x = torch.rand(6, 3, 16, 16)
    boxes, s = sample_scale_jitter(6, 16, 16, 24, 32, 32, g)
    out = scale_jitter(x, boxes, 24)
    big = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    for i in range(6):
        t, left = (boxes[i, :2] * 2).round().long().tolist()
        torch.testing.assert_close(out[i], big[i, :, t:t + 24, left:left + 24], rtol=1e-4,
                                   atol=1e-4)


def test_loader_presets_apply_the_papers_augmentations():
    """`alexnet_pca` through the loader: each image gets one RGB offset, the one its drawn
    alphas give; `vgg_scale_jitter` gives crops of the input size; other presets draw as before."""
    from convzoo.data.augment import Augment, get_augment
    from convzoo.data.batches import split_eigen
    from convzoo.data.catalog import fake
    from convzoo.data.loader import make_loader
    from convzoo.data.seeding import generator

    d = fake((3, 40, 40), 48, 4, seed=0)
    kw = dict(batch_size=16, train=True, device="cpu", input_size=(3, 32, 32),
              mean=(0.5,) * 3, std=(0.25,) * 3, seed=3, epoch=1)
    a = get_augment("alexnet_pca")
    plain = Augment(flip=True, scale_jitter=a.scale_jitter)
    xa, ya = map(torch.cat, zip(*make_loader(d.train, augment=a, **kw)))
    xb, yb = map(torch.cat, zip(*make_loader(d.train, augment=plain, **kw)))
    assert torch.equal(ya, yb) and xa.shape == (48, 3, 32, 32)
    diff = ((xa - xb) * 0.25).flatten(2)  # on the 0..1 scale
    assert float(diff.std(2).max()) < 1e-5  # one offset per image and channel
    # the same draws, in the loader's order: order, flips, jitter boxes, then the alphas (all
    # per position in the epoch, as the loader's other parameters are)
    g = generator("epoch", 3, 1)
    torch.randperm(48, generator=g)
    torch.rand(48, generator=g)
    sample_scale_jitter(48, 40, 40, 32, 37, 37, g)
    vals, vecs = split_eigen(d.train)
    want = lighting_offsets(sample_lighting(48, 0.1, g), vals, vecs)
    torch.testing.assert_close(diff.mean(2), want, atol=1e-5, rtol=1e-4)
    assert float(want.abs().max()) > 0  # the noise is there

    v = make_loader(d.train, augment="vgg_scale_jitter", **kw)
    xv = torch.cat([x for x, _ in v])
    assert xv.shape == (48, 3, 32, 32) and not torch.equal(xv, xb)
    again = torch.cat([x for x, _ in make_loader(d.train, augment="vgg_scale_jitter", **kw)])
    assert torch.equal(xv, again)  # a seed gives the same batches


def test_folder_loader_applies_the_papers_presets(tmp_path):
    from PIL import Image

    from convzoo.data.catalog import FolderSplit
    from convzoo.data.loader import make_loader

    g = torch.Generator().manual_seed(0)
    samples = []
    for k in range(2):
        (tmp_path / f"c{k}").mkdir()
        for i in range(3):
            p = tmp_path / f"c{k}" / f"{i}.png"
            px = torch.randint(0, 256, (50, 60, 3), generator=g, dtype=torch.uint8)
            Image.fromarray(px.numpy()).save(p)
            samples.append((str(p), k))
    split = FolderSplit(samples)
    kw = dict(batch_size=3, train=True, device="cpu", input_size=(3, 32, 32),
              mean=(0.5,) * 3, std=(0.25,) * 3, seed=0, epoch=0)
    for preset in ("vgg_scale_jitter", "alexnet_pca"):
        x = torch.cat([b for b, _ in make_loader(split, augment=preset, **kw)])
        again = torch.cat([b for b, _ in make_loader(split, augment=preset, **kw)])
        assert x.shape == (6, 3, 32, 32) and torch.equal(x, again)
