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
# # Transfer learning and how deep to fine-tune
#
# The lecture's recipe for a small data set: take a network trained on ImageNet, replace its
# last layer, and train only that layer (a linear probe on the pretrained features); with more
# data, train it and a few layers before it, with smaller steps for earlier layers. Two
# questions follow, and each has an experiment:
#
# 1. Are the pretrained features worth anything? `convzoo experiment transfer` trains the
#    same linear probe on pretrained features and on the features of the same network with
#    random weights, at several numbers of labelled images per class.
# 2. How deep to fine-tune? `convzoo experiment transfer-depth` retrains 0, 1, 2, ... of the
#    network's groups before the head, and reports each group's relative weight change after
#    full fine-tuning, to test the lecture's "the first layers' filters suit every task".
#
# Full scale: EfficientNet-Lite0 with its ImageNet weights (the `weights` extra) on digits,
# images at 96x96 (5 minutes on a shared 2-core CPU). Small scale: a LeNet-5 trained for one
# epoch on one synthetic data set, transferred to another.

# %%
import json

from convzoo.lesson import convzoo, out_dir, show, small

SMALL = small()
OUT = out_dir("transfer")

# %%
if SMALL:
    source = [OUT / "source"]
    convzoo("train", "lenet5_modern", "--data", "fake:1x28x28:64:4", "--epochs", 1,
            "--batch-size", 32, "--device", "cpu", "--out", source[0], "--quiet",
            "--no-report")
    target = ["--data", "fake:1x28x28:48:3", "--device", "cpu"]
    probe = ["--labels-per-class", "4,8", "--methods", "probe_pretrained,probe_random",
             "--epochs", 1]
    depth = ["--depths", "0,1", "--epochs", 1]
else:
    source = ["efficientnet_lite0", "--weights", "imagenet"]
    target = ["--data", "digits", "--input", "3x96x96", "--device", "cpu"]
    probe = ["--labels-per-class", "10,50", "--epochs", 3]
    depth = ["--labels-per-class", 20, "--depths", "0,1,2,3", "--epochs", 3, "--lr", 0.02,
             "--test-limit", 200]

# %% [markdown]
# ## Pretrained features against random ones
#
# With few labels per class, a linear probe on the pretrained features should beat the same
# probe on random features by a wide margin, and beat training from scratch. At full scale
# this lesson gave (digits, 359 test images): 10 labels per class, pretrained 0.749 against
# random 0.691; 50 labels per class, 0.911 against 0.699. Partial fine-tuning (0.37) and
# training from scratch (0.08) get only 3 epochs on 500 images: far too few steps for them
# (measured before a short run re-estimated its batch norms' statistics before scoring, which
# lifts both: on Fashion-MNIST's 10 labels per class from 0.34 and 0.10 to 0.48 and 0.30).
# The project measured more (docs/transfer_depth.md): probes of Lite0, Lite1 and Lite2 on
# Fashion-MNIST reach 0.852, 0.848 and 0.836, the reverse of their ImageNet order: a better
# ImageNet model is not always a better feature extractor for a task far from ImageNet.

# %%
exp = OUT / "transfer"
convzoo("experiment", "transfer", *source, *target, *probe, "--out", exp)
show(exp / "transfer.png")
result = json.loads((exp / "transfer.json").read_text())
print(json.dumps(result["rows"], indent=1)[:800])

# %% [markdown]
# ## How deep to fine-tune
#
# Depth 0 is the linear probe; depth d retrains the last d groups as well. The second table
# is each group's relative weight change ||W_after - W_before|| / ||W_before|| after full
# fine-tuning (every group at the same rate).
#
# At full scale (Lite0 to digits, 20 labelled images per class, 200 test images) this lesson
# gave: probe 0.735; one stage retrained 0.800; two 0.815; three 0.755; everything 0.720.
# Digits are far from ImageNet, so retraining the last stages helps; retraining everything
# on 200 images overfits and loses. The weight change is largest in the stem (0.080) and
# falls towards the head (stage7 0.004): the reverse of "the first layers change least", as
# the project found before (docs/transfer_depth.md). The stem is one small 3x3 convolution
# over three channels, seeing 8x8 digits enlarged to 96x96, nothing like ImageNet's photos;
# a relative change is large where there are few weights to share it.
# %%
deep = OUT / "transfer_depth"
convzoo("experiment", "transfer-depth", *source, *target, *depth, "--out", deep)
show(deep / "transfer_depth.png")
show(deep / "transfer_depth.md")

# %%
WRITTEN = [exp / "transfer.json", exp / "transfer.png", deep / "transfer_depth.json",
           deep / "transfer_depth.md", deep / "transfer_depth.png"]
for p in WRITTEN:
    print("written:", p)
