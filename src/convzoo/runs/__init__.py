"""What a run leaves on disk and how it is read back: checkpoints (`checkpoint`: save, load,
verify; `state`: RNG and nested state as JSON plus tensors; `disk`: durable writes and atomic
swaps), the run directory's lock, its metrics files, and `source` (a run, a checkpoint or a
named model with weights, resolved the same way by every command)."""
