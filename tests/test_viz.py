"""Filter grids and activation maps: their pixel sizes, their content, and bad input."""

import pytest
import torch
from PIL import Image

from convzoo import create_model
from convzoo.cli import main
from convzoo.errors import UserInputError
from convzoo.viz.filters import conv_layer, draw_filters, filter_tiles


def pixels(path):
    with Image.open(path) as im:
        return torch.frombuffer(bytearray(im.convert("RGB").tobytes()), dtype=torch.uint8) \
            .view(im.height, im.width, 3), im.size


@pytest.fixture
def photo(tmp_path):
    g = torch.Generator().manual_seed(1)
    arr = (torch.rand(48, 40, 3, generator=g) * 255).to(torch.uint8).numpy()
    path = tmp_path / "photo.png"
    Image.fromarray(arr, "RGB").save(path)
    return path


def test_first_conv_grid_has_the_expected_size_and_content(tmp_path, capsys):
    out = tmp_path / "f.png"
    assert main(["viz", "filters", "lenet5_modern", "--out", str(out)]) == 0
    # 6 filters of 1x5x5: grey tiles enlarged 10x (50 px), a labelled 3x2 grid under a title
    img, size = pixels(out)
    assert size[0] >= 3 * 50 and size[1] >= 2 * 50
    assert len(img[..., 0].unique()) > 20  # the weights, not a flat grey
    assert (img[..., 0] == img[..., 1]).all()  # one input channel: grey
    assert "stem.c1" in capsys.readouterr().out


def test_rgb_filters_and_a_deeper_layer(tmp_path):
    model = create_model("resnet20")
    pic = draw_filters(model, tmp_path / "rgb.png")
    assert pic.layer == "stem.conv" and pic.weight_shape == (16, 3, 3, 3)
    assert pic.size[0] >= 4 * 48 and pic.size[1] >= 4 * 48  # 3x3 kernels enlarged 16x
    img, _ = pixels(tmp_path / "rgb.png")
    assert (img[..., 0] != img[..., 1]).any()  # colour tiles
    # a group means its first convolution: 16 filters x 16 input channels, one row each
    pic = draw_filters(model, tmp_path / "deep.png", layer="stage1", max_filters=4)
    assert pic.layer == "stage1.0.conv1.conv"
    assert pic.size[0] >= 16 * 48 and 4 * 48 <= pic.size[1] < 8 * 48  # 4 rows of 16 inputs


def test_each_filter_is_scaled_on_its_own():
    w = torch.stack([torch.arange(9.0).view(1, 3, 3), 100 * torch.arange(9.0).view(1, 3, 3)])
    tiles, cols = filter_tiles(w)
    assert cols is None
    torch.testing.assert_close(tiles[0], tiles[1])
    assert tiles.min() == 0 and tiles.max() == 1


def test_activation_maps_of_a_tiny_model(tmp_path, photo, capsys):
    out = tmp_path / "a.png"
    assert main(["viz", "activations", "resnet20", str(photo), "--layer", "stage2",
                 "--channels", "8", "--out", str(out)]) == 0
    img, size = pixels(out)
    # stage2 of a 32x32 input: 32 maps of 16x16, enlarged 4x to 64 px; 8 of them in a 3x3 grid
    # under two title lines (32 px), each tile over its channel's number (14 px); the picture
    # is as wide as its title
    assert size[1] == 32 + 3 * 64 + 4 + 3 * 14 and size[0] >= 3 * 64 + 4
    assert img[33:97, 1:65].float().std() > 5
    assert img[2:30, :].float().std() > 5  # the title is drawn
    assert "8 of 32 channels at stage2" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["viz", "filters", "resnet20", "--layer", "stem.cnov"], "did you mean stem.conv"),
    (["viz", "filters", "resnet20", "--layer", "head"], "not a convolution"),
    (["viz", "filters", "resnet20", "--layer", "stem.act"], "ReLU, not a convolution"),
    (["viz", "activations", "resnet20", "missing.png"], "no such file"),
    (["viz", "activations", "resnet20", "PHOTO", "--layer", "head.fc"], "not maps"),
    (["viz", "filters", "no_such_net"], "no_such_net"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, photo, capsys, argv, words):
    argv = [str(photo) if a == "PHOTO" else a for a in argv]
    assert main([*argv, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_a_model_without_convolutions_is_refused():
    with pytest.raises(UserInputError, match="no convolution"):
        conv_layer(create_model("plain_fc"), None)
