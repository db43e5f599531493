"""Training loops and their helpers (schedules, EMA, checkpoints), kept apart from the models."""
