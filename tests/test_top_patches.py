"""Maximally activating patches: the receptive field, and patches equal to the receptive-field
crops of the arg-max positions."""

import torch
from torch import nn

from convzoo.viz.top_patches import draw_top_patches, receptive_field, top_patches


def hand_field(layers):
    """The recurrence, written out: (kernel, stride, pad) per layer from the input."""
    r, j, start = 1, 1, 0.0
    for k, s, p in layers:
        r, start, j = r + (k - 1) * j, start + ((k - 1) / 2 - p) * j, j * s
    return r, j, start


class Net(nn.Module):
    def __init__(self, pool: type = nn.MaxPool2d) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), pool(2),
                                  nn.Conv2d(4, 6, 5, stride=2))
        self.a = nn.Conv2d(6, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 6, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(6, 2))

    def forward(self, x):
        x = self.body(x)
        x = x + self.b(torch.relu(self.a(x)))  # a residual block: the shortcut and main path
        return self.head(x)


def test_receptive_field_follows_the_chain_and_the_shortcut():
    f = receptive_field(Net(), "body", (3, 32, 32))
    r, j, start = hand_field([(3, 1, 1), (2, 2, 0), (5, 2, 0)])
    assert (f.size, f.jump, f.start) == ((r, r), (j, j), (start, start)) == ((12, 12), (4, 4),
                                                                           (4.5, 4.5))
    # after the residual block: the main path's two 3x3 convolutions widen it, the shortcut not
    r2, j2, s2 = hand_field([(3, 1, 1), (2, 2, 0), (5, 2, 0), (3, 1, 1), (3, 1, 1)])
    f2 = receptive_field(Net(), "b", (3, 32, 32))
    assert (f2.size, f2.jump, f2.start) == ((r2, r2), (j2, j2), (s2, s2))


def test_receptive_field_is_where_the_gradient_reaches():
    """An independent check: one output position's gradient lands exactly on its box."""
    model = Net(pool=nn.AvgPool2d).eval()  # average pooling passes gradient to every input
    f = receptive_field(model, "b", (3, 40, 40))
    x = torch.randn(1, 3, 40, 40, requires_grad=True)
    out = {}
    h = model.b.register_forward_hook(lambda m, i, o: out.setdefault("b", o))
    model(x)
    h.remove()
    i, j = 2, 3
    out["b"][0, 0, i, j].backward()
    rows = x.grad[0].abs().sum((0, 2)).nonzero().flatten()
    cols = x.grad[0].abs().sum((0, 1)).nonzero().flatten()
    top, left, bottom, right = f.box(i, j)
    assert (int(rows.min()), int(rows.max()) + 1) == (max(top, 0), min(bottom, 40))
    assert (int(cols.min()), int(cols.max()) + 1) == (max(left, 0), min(right, 40))


def test_patches_are_the_receptive_field_crops_of_the_argmax(tmp_path):
    model = Net().eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(20, 3, 24, 24, generator=g)
    batches = [(x[s:s + 7], torch.zeros(len(x[s:s + 7]), dtype=torch.long))
               for s in range(0, 20, 7)]
    res = top_patches(model, batches, "body", filters=[0, 2, 5], top=4)
    r, j, start = hand_field([(3, 1, 1), (2, 2, 0), (5, 2, 0)])
    with torch.no_grad():
        act = model.body(x)  # 20 x 6 x h x w
    w = act.shape[-1]
    padded = torch.full((20, 3, 24 + 2 * r, 24 + 2 * r), float("nan"))
    padded[:, :, r:r + 24, r:r + 24] = x
    assert res.scanned == 20 and res.patches.shape == (3, 4, 3, r, r)
    for row, f in enumerate([0, 2, 5]):
        per_image, where = act[:, f].flatten(1).max(1)
        best = per_image.topk(4).indices
        assert res.images[row].tolist() == best.tolist()
        torch.testing.assert_close(res.values[row], per_image[best])
        for q, img in enumerate(best.tolist()):
            pi, pj = divmod(int(where[img]), w)
            assert res.positions[row, q].tolist() == [pi, pj]
            top = round(start + pi * j - (r - 1) / 2)
            left = round(start + pj * j - (r - 1) / 2)
            want = padded[img, :, top + r:top + 2 * r, left + r:left + 2 * r]
            torch.testing.assert_close(res.patches[row, q], want, equal_nan=True)
    size = draw_top_patches(res, tmp_path / "top.png")
    assert (tmp_path / "top.png").stat().st_size > 0 and size[0] > size[1]
    assert res.to_dict()["filters"][1]["filter"] == 2


def test_alexnet_fields():
    from convzoo import create_model

    a = create_model("alexnet")  # as published: 227x227, CONV1 11x11/4, POOL1 3x3/2
    assert receptive_field(a, "stem.conv", a.default_input_size).size == (11, 11)
    assert receptive_field(a, "stem.pool", a.default_input_size).size == (19, 19)
