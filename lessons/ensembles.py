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
# # Ensembles: averaging several trained networks
#
# AlexNet's best ImageNet result came from averaging the predictions of several networks: one
# CNN had 18.2% top-5 validation error, seven CNNs 15.4% (Krizhevsky et al. 2012, Table 2).
# Averaging helps because independently trained networks make partly different mistakes.
#
# This lesson trains the same network three times with seeds 0, 1 and 2 (different initial
# weights and data order) and scores each one and the ensemble that averages their softmax
# outputs image by image, with `convzoo eval RUN_A RUN_B RUN_C`.
#
# Full scale: LeNet-5 (modern) on digits, 10 epochs each. Small scale: a synthetic data set,
# 1 epoch each.

# %%
import json

from convzoo.lesson import convzoo, convzoo_text, out_dir, small

SMALL = small()
OUT = out_dir("ensembles")
DATA = "fake:1x28x28:128:4" if SMALL else "digits"
EPOCHS = 1 if SMALL else 10

# %% [markdown]
# ## Three members
#
# The seed also decides which images digits holds out for testing, so the three runs share
# the data set's seed split: they are scored on the same test images.

# %%
runs = [OUT / f"seed{s}" for s in (0, 1, 2)]
for s, run in enumerate(runs):
    convzoo("train", "lenet5_modern", "--data", DATA, "--epochs", EPOCHS, "--batch-size", 32,
            "--seed", s, "--device", "cpu", "--out", run, "--quiet", "--no-report")

# %% [markdown]
# ## Each member and the ensemble

# %%
text = convzoo_text("eval", *runs, "--device", "cpu", "--format", "json")
scores = OUT / "ensemble.json"
scores.write_text(text, encoding="utf-8")
result = json.loads(text)
for s, m in enumerate(result["members"]):
    print(f"seed {s}          top-1 {m['top1']:.4f}  loss {m['loss']:.4f}")
ens = result["ensemble"]
print(f"ensemble of 3   top-1 {ens['top1']:.4f}  loss {ens['loss']:.4f}")
assert len(result["members"]) == 3

# %% [markdown]
# ## What to look at
#
# The project's measurement (docs/ensembles.md): three LeNet-5s trained for 3 epochs on
# Fashion-MNIST had 10.24%, 11.18% and 10.53% test error; their ensemble 9.90%, better than
# the best member, with a lower loss than every member. The gain is smaller than AlexNet's (a
# relative 15% with seven CNNs; here 3-7% with three) because members that differ only in
# their seed make more of the same mistakes. At the small scale the members barely learn, so
# the numbers mean nothing, but the mechanics are the same.

# %%
WRITTEN = [*(r / "summary.json" for r in runs), scores]
for p in WRITTEN:
    print("written:", p)
