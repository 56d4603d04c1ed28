"""Run infrastructure of every training script: flags, context, the epoch loop, checkpoints, resume, run folders, logging, signals, speed."""
