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
# # Test-time methods: flips and ten crops
#
# AlexNet (Krizhevsky et al. 2012) did not score its network on one view of each image: it
# averaged the softmax outputs of ten 224x224 patches of the 256x256 image, the four corners,
# the centre and the mirrors of those five. VGG resized each image to several scales and
# averaged again. The cost is ten forward passes per image; the gain, in AlexNet's case, was
# about 1.5 points of top-5 error.
#
# This lesson trains a small network, then scores it with `convzoo eval --tta`: the centre
# crop first, then each method, with its number of views and its top-1 minus the centre's.
#
# Full scale: LeNet-5 (modern) on digits for 10 epochs. Small scale: a synthetic data set,
# 1 epoch.

# %%
import json

from convzoo.lesson import convzoo, convzoo_text, out_dir, small

SMALL = small()
OUT = out_dir("test_time")
DATA = "fake:1x28x28:128:4" if SMALL else "digits"
EPOCHS = 1 if SMALL else 10

# %% [markdown]
# ## A network to score

# %%
run = OUT / "lenet5"
convzoo("train", "lenet5_modern", "--data", DATA, "--epochs", EPOCHS, "--batch-size", 32,
        "--device", "cpu", "--out", run, "--quiet", "--no-report")

# %% [markdown]
# ## The methods
#
# | method | views | what the model sees |
# |---|---:|---|
# | `none` | 1 | the centre crop of the model's input size |
# | `flip` | 2 | the centre crop and its mirror |
# | `ten-crop` | 10 | four corners and the centre, and their mirrors |
#
# The loader gives the images at the method's full size (crop / 0.875, as both papers resized
# to 256 for a 224 crop) and the views are cut from that batch; every method averages class
# probabilities over its views, as both papers did. `--format json` gives the same rows to
# read back; they are kept beside the run.

# %%
text = convzoo_text("eval", run, "--tta", "flip", "--tta", "ten-crop", "--device", "cpu",
                    "--format", "json")
scores = OUT / "tta.json"
scores.write_text(text, encoding="utf-8")
result = json.loads(text)
centre = result["methods"][0]["top1"]
for m in result["methods"]:
    print(f"{m['method']:9s} {m['views']:>2} views  top-1 {m['top1']:.4f}  "
          f"vs centre {m['top1'] - centre:+.4f}")
assert [m["views"] for m in result["methods"]] == [1, 2, 10]

# %% [markdown]
# ## What to look at
#
# A mirror of a digit is not a digit, and a corner crop cuts a centred digit's strokes off.
# At the full scale (LeNet-5 on digits, 10 epochs, 359 test images) this lesson measured:
#
# | method | views | top-1 | vs centre |
# |---|---:|---:|---:|
# | centre | 1 | 0.9833 | |
# | flip | 2 | 0.9359 | -4.7 points |
# | ten-crop | 10 | 0.8774 | -10.6 points |
#
# Both methods *hurt*: the network never saw mirrored or shifted digits in training, and the
# averaged views are images unlike its training set. Test-time methods help where the views
# are images the network could have been trained on: photos, with flip-and-crop augmentation,
# as in AlexNet and VGG. Even there the gain is small (about a point for AlexNet): the
# project's measurement on photos (EfficientNet-Lite0 on lfw, docs/test_time.md) found no
# method beating the centre crop on 40 images. Try `--augment crop_flip` in the training
# command and compare.

# %%
WRITTEN = [run / "summary.json", scores]
for p in WRITTEN:
    print("written:", p)
