"""rsbench.models."""
