"""rsbench command-line interface (installed as rsbench.cli)."""
