"""Scoring models, one way: `score` (source, data, class map, normalisation, precision,
loader, test-time method, tally) is what training's evaluation, `convzoo eval`, ensembles and
the report all use; `tta` holds the papers' test-time views, `ensemble` the mean of members'
softmaxes, `checkpoint_eval` a run scored on a data set, `features` penultimate features."""
