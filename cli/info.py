"""`rsbench info`: summarise a built dataset, or draw one of its samples."""

from __future__ import annotations

import click


@click.command()
@click.argument("dataset", type=click.Path(path_type=str))
@click.option("--plot", "plot_index", type=int, default=None, metavar="INDEX",
              help="Draw sample INDEX (of --task and --split) into --out instead of summarising.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="PNG file for --plot.")
@click.option("--task", default=None, help="Task whose samples --plot counts (default: the first).")
@click.option("--split", default=None, help="Split whose samples --plot counts (default: all).")
def info(dataset: str, plot_index: int | None, out: str | None, task: str | None,
         split: str | None) -> None:
    """Summarise a built dataset: tasks, classes and counts per split.

    \b
    Example:
      rsbench info psc15
      rsbench info psc15 --plot 0 --split test --out sample0.png
    """
    from rsbench.datasets.format.reader import open_dataset
    from rsbench.errors import UsageError

    data = open_dataset(dataset)
    if plot_index is None:
        if out is not None or task is not None or split is not None:
            raise UsageError("--out, --task and --split go with --plot INDEX; add --plot 0 "
                             "to draw the first sample")
        click.echo(data.summary())
        return
    if out is None:
        raise UsageError("--plot needs --out FILE.png: the file to draw the sample into")
    if not out.lower().endswith(".png"):
        raise UsageError(f"--out {out} must end in .png")
    from rsbench.datasets.torch_dataset import TaskDataset

    name = task or next(iter(data.tasks))
    ds = TaskDataset(data, name, split)
    if len(ds) == 0:
        raise UsageError(f"task {name} has no samples in split {split!r} of {dataset}; "
                         "splits are: " + ", ".join(sorted(set(data.index["split"]))))
    fig = ds.plot(plot_index, suptitle=f"{data.name}: {name} sample {plot_index}"
                  + (f" ({split})" if split else ""))
    fig.savefig(out)
    click.echo(f"wrote {out}")
