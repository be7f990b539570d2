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
# # Degradation: why residual connections
#
# He et al. (2015, section 4.2, Figure 6) trained plain networks of 20 to 56 layers on
# CIFAR-10: the deeper ones were *worse*, in training error as well as test error, so the
# cause is optimisation, not overfitting. The same networks with identity shortcuts got better
# with depth.
#
# `convzoo experiment degradation` trains, for each depth, the CIFAR ResNet (6n+2 layers,
# 16/32/64 filters, batch norm, shortcut option A) and its plain twin (the same layers and
# parameters, no shortcuts) with the same seed, data order and budget.
#
# Full scale: the command's default, mnist5k (4,000 training images at their own 28x28), depths
# 20 and 56, 2 epochs of batch 64 (about 2.5 minutes on a 2-core CPU). Small scale: a synthetic
# data set, depth 8, 1 epoch.

# %%
import json

from convzoo.lesson import convzoo, out_dir, show, small

SMALL = small()
OUT = out_dir("degradation")

# %% [markdown]
# ## The two blocks
#
# The plain block is two 3x3 convolutions; the residual block adds its input to their output.
# Where the number of filters doubles, option A pads the shortcut with zeros (no parameters),
# so the two twins have the same parameter count.

# %%
blocks = OUT / "resnet20_blocks.svg"
convzoo("viz", "architecture", "resnet20", "--style", "blocks", "--out", blocks)
show(blocks)

# %% [markdown]
# ## The experiment

# %%
exp = OUT / "experiment"
if SMALL:
    convzoo("experiment", "degradation", "--data", "fake:1x16x16:32:2", "--depths", 8,
            "--epochs", 1, "--batch-size", 32, "--out", exp)
else:
    convzoo("experiment", "degradation", "--data", "mnist5k", "--out", exp)
show(exp / "degradation.png")
show(exp / "degradation.md")

# %% [markdown]
# ## What to look at
#
# Dashed lines are the plain nets, solid the residual ones. At the full scale the project's
# benchmark run (docs/experiments.md) measured these final training errors:
#
# | depth | plain | residual |
# |---:|---:|---:|
# | 8 | 4.2% | 5.5% |
# | 20 | 3.6% | 3.1% |
# | 56 | **42.9%** | 2.8% |
#
# At 8 layers there is nothing to fix. At 56, the plain net cannot even fit its training set
# (its gradients at initialisation explode: 229 at the first layer against 0.5 for plain-20),
# while resnet-56 trains as fast as resnet-20 and ends lowest of all: Figure 6's ordering.
# Another run of this lesson gave plain-56 34.8% against resnet-56 4.2% (plain-20 4.2%,
# resnet-20 3.2%): the numbers move from run to run on a shared CPU, the ordering does not.
# Try `--warmup 0` to see how much the first half epoch's warm-up matters at this budget, and
# `--depths 8,20,56 --epochs 4` to see resnet-56 overtake resnet-20.

# %%
result = json.loads((exp / "degradation.json").read_text())
for r in result["rows"]:
    print(f"{r['name']:10s} residual={r['residual']!s:5s} params {r['params']:,}  "
          f"final training error {r['final_train_err']:.3f}")
# the twins have the same parameters: option A's shortcut adds none
by_depth = {}
for r in result["rows"]:
    depth = r["name"].removeprefix("plain").removeprefix("resnet")
    by_depth.setdefault(depth, []).append(r["params"])
assert all(len(set(p)) == 1 for p in by_depth.values()), by_depth

# %%
WRITTEN = [blocks, exp / "degradation.json", exp / "degradation.md", exp / "degradation.png"]
for p in WRITTEN:
    print("written:", p)
