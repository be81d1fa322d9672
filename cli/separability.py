"""`rsbench separability`: JM distance and Transformed Divergence between the classes of a dataset."""

from __future__ import annotations

from pathlib import Path

import click

HSI_BUILDERS = ("build-taiga", "build-hsi")  # builders of hyperspectral raster datasets


@click.command()
@click.argument("dataset", type=click.Path())
@click.option("--variable", "variables", multiple=True,
              help="Categorical variable (repeatable) [default: all classification tasks].")
@click.option("--split", default="train", show_default=True,
              help="Split whose window pixels are used (train, val, test or all).")
@click.option("--bands", default=None, help="Stored bands to use, e.g. 0:60 or 0,10,20 "
              "[default: all].")
@click.option("--format", "fmt", type=click.Choice(["csv", "markdown", "latex"]),
              default="markdown", show_default=True)
@click.option("--out", type=click.Path(), default=None,
              help="Table file; heatmaps go next to it as <stem>_<variable>.png [default: "
              "table on stdout, heatmaps ./separability_<variable>.png].")
@click.option("--ridge", type=click.FloatRange(min=0), default=None,
              help="Add RIDGE x mean variance to each (standardised) class covariance; needed "
              "when a class has no more pixels than bands.")
@click.option("--worst", type=click.IntRange(min=1), default=3, show_default=True,
              help="How many least separable pairs to print per variable.")
def separability(dataset, variables, split, bands, fmt, out, ridge, worst) -> None:
    """Pairwise class separability (Jeffries-Matusita, Transformed Divergence; both 0..2).

    Gaussian class models of the pixel spectra, one table row per class pair, a JM/TD heatmap
    PNG per variable, and the least separable pairs printed (>= 1.9 separates well).

    \b
    Example:
      rsbench separability taiga --variable main_tree_species_class --format latex \\
          --out sep/species.tex
      rsbench separability taiga --split train --bands 0:60 --out sep/all.csv --format csv
    """
    import pandas as pd

    from rsbench.datasets.builders.taiga import parse_bands
    from rsbench.datasets.format.reader import open_dataset
    from rsbench.errors import UsageError
    from rsbench.plots.heatmaps import plot_heatmaps
    from rsbench.separability import (
        dataset_class_stats,
        format_table,
        least_separable,
        separability_table,
    )

    ds = open_dataset(dataset, hint="separability needs a dataset built by `rsbench "
                      "build-taiga`")
    image = ds.manifest["arrays"].get("image", {})
    if ds.manifest.get("builder") not in HSI_BUILDERS or image.get("layout") != "raster":
        raise UsageError(f"{dataset} was built by {ds.manifest.get('builder', 'another tool')}, "
                         "not build-taiga; separability compares the pixel spectra of a "
                         "hyperspectral dataset: give a folder written by `rsbench build-taiga` "
                         "(or `rsbench build-hsi`)")
    names = list(variables) or [n for n, t in ds.tasks.items()
                                if t["type"] == "classification" and "raster" in t]
    sel = parse_bands(bands, ds.array("image").shape[2]) if bands else None
    split_arg = None if split == "all" else split
    tables = []
    out_path = Path(out) if out else None
    if out_path:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        stats, classes = dataset_class_stats(ds, name, split_arg, sel)
        present = {i: classes[i] for i in stats}
        missing = [c for i, c in enumerate(classes) if i not in stats]
        table = separability_table(stats, present, ridge=ridge)
        table.insert(0, "variable", name)
        tables.append(table)
        png = (out_path.with_name(f"{out_path.stem}_{name}.png") if out_path
               else Path(f"separability_{name}.png"))
        plot_heatmaps(table, list(present.values()), png,
                      f"{name} ({split}, {ds.array('image').shape[2] if sel is None else len(sel)}"
                      " bands)")
        click.echo(f"{name}: least separable pairs ({split} pixels; heatmap {png}):", err=True)
        for line in least_separable(table, worst):
            click.echo(f"  {line}", err=True)
        if missing:
            click.echo(f"  (no {split} pixels of: {', '.join(missing)})", err=True)
    all_tables = pd.concat(tables, ignore_index=True)
    text = format_table(all_tables, fmt, caption=f"Class separability of {ds.name} ({split})")
    if out_path:
        out_path.write_text(text)
        click.echo(f"wrote {out_path}", err=True)
    else:
        click.echo(text, nl=False)
