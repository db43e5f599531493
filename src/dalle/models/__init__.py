"""Models: ``nn.Module``s with weights, each with its config dataclass beside it."""
