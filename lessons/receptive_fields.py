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
# # Layer arithmetic and receptive fields: why a cascade of 3x3 convolutions
#
# The lectures teach three pieces of arithmetic: the output size of a convolution,
# (N - F + 2P) / S + 1; the number of its weights, F * F * C_in * C_out; and the receptive
# field, how many input pixels one output sees. VGG's argument (Simonyan and Zisserman 2014,
# section 2.3) puts them together: three stacked 3x3 layers see a 7x7 field, as one 7x7 layer
# does, with 27C^2 weights instead of 49C^2 and three ReLUs instead of one.
#
# Everything here is computed on the meta device, from the real modules: no weights are
# allocated, so it runs in seconds and needs no small setting: CONVZOO_LESSON_SMALL changes
# nothing here.

# %%
from convzoo.analysis.formulas import cascade, output_size
from convzoo.analysis.receptive import profile_with_fields
from convzoo.analysis.summary_table import profile_table
from convzoo.errors import UserInputError
from convzoo.lesson import convzoo, out_dir, show

OUT = out_dir("receptive_fields")
VGG = "vgg16"

# %% [markdown]
# ## The output size, and a filter that does not fit
#
# A 5x5 filter with stride 1 and padding 2 keeps a 32x32 map at 32x32. A 3x3 filter with
# stride 3 on a 7x7 input gives (7 - 3) / 3 + 1 = 2.33 positions: it does not tile the input,
# and convzoo says so instead of silently flooring (as frameworks do).

# %%
print("5x5/1 pad 2 on 32:", output_size(32, 5, stride=1, pad=2))
try:
    output_size(7, 3, stride=3)
except UserInputError as e:
    print("refused:", e)

# %% [markdown]
# `convzoo calc conv --pad any` lists the paddings that do fit: P = 1 gives a 3x3 output.

# %%
convzoo("calc", "conv", "--input", 7, "--filter", 3, "--stride", 3, "--pad", "any")

# %% [markdown]
# ## The cascade
#
# Each 3x3 layer with stride 1 widens the field by 2: one layer sees 3, two see 5, three see
# 7. The weights of one 7x7 layer are 49 C^2; those of three 3x3 layers 27 C^2, 45% fewer at
# C = 64 (200,704 against 110,592).

# %%
c = cascade(7)
print(f"{c.layers} layers of 3x3 see {c.field}x{c.field}; weights per C^2: "
      f"{c.big_weights_per_c2} (one {c.filter}x{c.filter}) against {c.small_weights_per_c2}")
assert c.field == 7 and (c.big_weights_per_c2, c.small_weights_per_c2) == (49, 27)
convzoo("calc", "cascade", "--filter", 7, "--channels", 64)
convzoo("calc", "rf", "3x3/1,3x3/1,3x3/1")

# %% [markdown]
# ## The fields of a real network
#
# The same rule followed through VGG's real modules: the field grows by 2 x jump at every 3x3
# convolution, and every max pool doubles the jump. For VGG-16 the lecture's numbers are
# conv5_3: 196 and pool5: 212, so each unit of the last 7x7 map sees almost all of the 224x224
# image. The table below is `convzoo summary` with its RF, jump and start columns.

# %%
prof, trace = profile_with_fields(VGG)
fields = {r.name: r for r in trace.rows}
for r in prof.layers:
    if r.type == "Conv2d":
        f = fields[r.name]
        print(f"{r.name:18s} {'x'.join(map(str, r.output_shape[1:])):>12s}  rf {f.rf[0]:>3}  "
              f"jump {f.jump[0]:>2g}")
last_pool = [r for r in prof.layers if r.type == "MaxPool2d"][-1]
print(f"last pool {last_pool.name}: rf {fields[last_pool.name].rf[0]}")
assert fields["stages.4.2.conv"].rf[0] == 196 and fields["stages.4.3"].rf[0] == 212

# %% [markdown]
# The whole table, as `convzoo summary VGG --format markdown` prints it:

# %%
table = OUT / f"summary_{VGG}.md"
table.write_text(profile_table(prof, trace).render("markdown"), encoding="utf-8")
show(table)
print(f"{VGG}: {prof.total_params:,} parameters, {prof.total_macs / 1e9:.2f} GMACs")

# %% [markdown]
# What to notice: the parameters sit in the fully connected layers (fc6 alone has 102.8M of
# VGG-16's 138.4M), the operations in the convolutions (15.5 GMACs), and the receptive field
# passes the image size before the classifier: depth buys field, and 3x3 layers buy it cheaply.

# %%
WRITTEN = [table]
for p in WRITTEN:
    print("written:", p)
