"""rsbench.training."""
