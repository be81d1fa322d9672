"""rsbench.reports."""
