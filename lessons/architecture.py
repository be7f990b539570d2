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
# # Drawing the networks
#
# The lectures are mostly pictures of networks: LeNet-5's and AlexNet's layered volumes,
# GoogLeNet's Inception module, the residual block, ResNet's 34-layer column beside the plain
# 34 and VGG-19 (He et al. 2015, Figure 3). `convzoo viz architecture` draws each of them from
# the real module on the meta device (no weights are allocated), with every label taken from
# the profile `convzoo summary` prints: the numbers are right by construction.
#
# Three styles:
#
# - `volumes`: each feature map a box, its height and width following its spatial size, its
#   depth its channels, labelled CxHxW, with the kernel drawn in the volume before it;
# - `blocks`: the inside of one block (Inception's four branches, the residual block and its
#   shortcut, the bottleneck, MBConv with squeeze-and-excitation);
# - `columns`: one column per network, one box per weight layer, shortcuts as arcs, dotted
#   where the dimensions change.
#
# Nothing trains here, so there is no small setting to pick: the small run draws LeNet-5 and
# ResNet-20 only; the full one draws the lectures' figures.

# %%
from convzoo import summary
from convzoo.lesson import convzoo, out_dir, show, small
from convzoo.viz.architecture import draw_architecture

SMALL = small()
OUT = out_dir("architecture")

# %% [markdown]
# ## LeNet-5 as layered volumes
#
# 1x32x32 in, C1 6x28x28 (5x5 filters), S2 6x14x14, C3 16x10x10, S4 16x5x5, C5 120, F6 84,
# 10 outputs: 60,000 parameters, LeCun et al.'s Figure 2.

# %%
lenet = OUT / "lenet5_volumes.svg"
flows, size = draw_architecture(["lenet5"], "volumes", lenet)
print(f"{flows[0].profile.total_params:,} parameters; {size[0]}x{size[1]} pixels")
assert flows[0].profile.total_params == summary("lenet5").total_params
show(lenet)

# %% [markdown]
# ## A residual block
#
# ResNet-20's first block of each kind: the identity shortcut goes around the two 3x3
# convolutions into the addition; where the filters double, option A's shortcut pads with
# zeros.

# %%
residual = OUT / "resnet20_blocks.svg"
convzoo("viz", "architecture", "resnet20", "--style", "blocks", "--out", residual)
show(residual)

# %%
WRITTEN = [lenet, residual]
if not SMALL:
    # AlexNet's two towers (groups=2), Inception 3a's four branches (1x1, 3x3, 5x5 and pool
    # projection: 64/128/32/32 channels, concatenated to 256x28x28), and Figure 3's columns:
    # 19, 34 and 34 weight layers, 16 shortcut arcs for ResNet-34, 3 of them dotted
    for models, style, extra, name in (
            (["alexnet"], "volumes", [], "alexnet_volumes.svg"),
            (["googlenet"], "blocks", ["--block", "stages.0.inception3a"],
             "inception3a_blocks.svg"),
            (["vgg19", "plain34", "resnet34"], "columns", [], "columns.svg")):
        out = OUT / name
        convzoo("viz", "architecture", *models, "--style", style, *extra, "--out", out)
        show(out)
        WRITTEN.append(out)

# %% [markdown]
# The SVG's text is real text: open the file in a browser and search for "3x3 conv, 64". A
# PNG or PDF comes from the same drawing with `--out FILE.png` (or `.pdf`).

# %%
for p in WRITTEN:
    print("written:", p)
