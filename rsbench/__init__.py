"""rsbench: remote-sensing multitask benchmark datasets, models and result tables."""

__version__ = "0.1.0"
