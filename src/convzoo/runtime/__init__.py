"""Where and how convzoo computes: the device, threads, bf16 and channels_last (`device`), the
faster CPU layers (`cpu_kernels`), torchrun and DDP (`distributed`), progress display and the
signals that stop a run cleanly."""
