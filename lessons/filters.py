# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # What the filters see: filters, activation maps and top patches
#
# Three pictures of a trained network (Zeiler and Fergus 2013):
#
# - the **first layer's filters**, drawn as images: they look at pixels directly, so their
#   weights are pictures of what they detect (edges, colour blobs);
# - the **activation maps** of a layer for one image: where in the image each channel
#   responds;
# - the **top patches** of a deeper layer: over a whole data set, the image patches (as large
#   as the layer's receptive field) where a channel responds most.
#
# Full scale: EfficientNet-Lite0 with its ImageNet weights (the `weights` extra), scanned on
# digits. Small scale: a LeNet-5 trained for one epoch on a synthetic data set.

# %%
import json

from convzoo.lesson import convzoo, out_dir, show, small

SMALL = small()
OUT = out_dir("filters")

# %%
if SMALL:
    source = OUT / "lenet5"
    convzoo("train", "lenet5_modern", "--data", "fake:1x28x28:128:4", "--epochs", 1,
            "--batch-size", 32, "--device", "cpu", "--out", source, "--quiet", "--no-report")
    weights, layer, data = [], "stage2", []
else:
    source = "efficientnet_lite0"
    weights, layer, data = ["--weights", "imagenet"], "stage3", ["--data", "digits"]

# %% [markdown]
# ## The first layer's filters
#
# Each filter is scaled to 0..1 on its own; a filter over 3 input channels is one RGB tile.
# Lite0's first layer is 3x3 with stride 2: its 32 filters are colour and small-gradient
# detectors of 9 pixels, not the large Gabor-like edges of AlexNet's 11x11 first layer.

# %%
filters = OUT / "filters.png"
convzoo("viz", "filters", source, *weights, "--out", filters)
show(filters)

# %% [markdown]
# ## Activation maps for one image
#
# One image from the data set, run through the network; the first channels at the layer, each
# scaled on its own. The command also prints the layer's mean and its fraction of exact zeros:
# after a ReLU often half or more; Lite0's stages end in a linear projection, so none there.
# At full scale the image is an 8x8 digit enlarged with square pixels, and the maps at
# `stage2` respond to the edges of those squares: edge detectors, seeing the edges this image
# has. A photo (`convzoo viz activations efficientnet_lite0 photo.jpg --weights imagenet
# --layer stage2 --out maps.png`) shows them finding the contours of a face
# (docs/experiments.md).

# %%
from convzoo.data.catalog import load_dataset  # noqa: E402
from convzoo.viz.grid import save_grid  # noqa: E402

# digits are 8x8: enlarged 28 times to Lite0's 224x224
images = load_dataset("fake:1x28x28:8:2" if SMALL else "digits").test.images
image = OUT / "image.png"
save_grid(images[:1].float() / 255, image, scale=1 if SMALL else 28)
maps = OUT / "activations.png"
convzoo("viz", "activations", source, image, *weights, "--layer", "stage1" if SMALL else
        "stage2", "--channels", 8, "--out", maps)
show(maps)

# %% [markdown]
# ## Top patches
#
# For each of a few channels of the layer, the patches of the test images where it responds
# most. The patch is the layer's receptive field (printed with the picture): deeper layers
# see larger patches, and respond to larger structures.

# %%
patches = OUT / "top_patches.png"
convzoo("viz", "top-patches", source, *weights, *data, "--layer", layer, "--filters", 4,
        "--top", 4, "--limit", 64 if SMALL else 400, "--device", "cpu", "--out", patches)
show(patches)
info = json.loads(patches.with_suffix(".json").read_text())
print(f"{info['layer']}: receptive field {info['receptive_field']}, jump {info['jump']}, "
      f"{info['images_scanned']} images scanned")

# %%
WRITTEN = [filters, maps, patches, patches.with_suffix(".json")]
for p in WRITTEN:
    print("written:", p)
