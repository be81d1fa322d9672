"""`rsbench build-psc`: GID (or the published GID-MTL patches) → PSC5 / PSC15."""

from __future__ import annotations

import click

from rsbench.cli.options import build_options


@click.command("build-psc")
@click.option("--gid", "gid_root", type=click.Path(), help="Unpacked GID folder (original "
              "release or the GID-15 repackaging).")
@click.option("--gid-mtl", "gid_mtl", type=click.Path(), help="Published GID-MTL5/GID-MTL15 "
              "patches to import instead of building from GID.")
@click.option("--classes", type=click.Choice(["5", "15"]), callback=lambda c, p, v: None if v is None else int(v),
              required=True,
              help="Class scheme: 5 (PSC5) or 15 (PSC15).")
@click.option("--out", required=True, type=click.Path(), help="Output dataset folder.")
@click.option("--size", type=int, default=224, show_default=True, help="Patch size in pixels.")
@click.option("--stride", type=int, default=None, help="Grid step in pixels [default: size].")
@click.option("--min-fraction", type=float, default=0.5, show_default=True,
              help="Scene class must cover MORE than this share of labelled pixels.")
@click.option("--min-labelled", type=float, default=0.25, show_default=True,
              help="Labelled pixels must be at least this share of the patch.")
@click.option("--max-off-palette", type=float, default=0.05, show_default=True,
              help="Largest share of off-palette label colours accepted per label file.")
@click.option("--bands", type=click.Choice(["rgb", "nirrgb"]), default="rgb", show_default=True)
@click.option("--train-fraction", type=float, default=0.8, show_default=True)
@click.option("--split-by", type=click.Choice(["patch", "image"]), default="patch",
              show_default=True, help="patch: per-class split (the paper); image: whole source "
              "images held out (no spatial leakage).")
@build_options()
def build_psc(gid_root, gid_mtl, classes, out, size, stride, min_fraction, min_labelled,
              max_off_palette, bands, train_fraction, split_by, seed, workers, resume,
              splits) -> None:
    """Build PSC5 / PSC15 (scene + segmentation) from GID or import the published GID-MTL sets.

    \b
    Examples:
      rsbench build-psc --gid GID --classes 5 --out psc5 --workers 4
      rsbench build-psc --gid GID --classes 15 --out psc15 --split-by image
      rsbench build-psc --gid-mtl GID-MTL/GID-MTL5 --classes 5 --out psc5-published
    """
    from rsbench.datasets.builders.psc import PscOptions, build_psc
    from rsbench.datasets.format.summary import format_count_table
    from rsbench.errors import UsageError

    if (gid_root is None) == (gid_mtl is None):
        raise UsageError("give exactly one of --gid (build from GID) or --gid-mtl (import the "
                         "published patches)")
    opts = PscOptions(classes=classes, size=size, stride=stride, min_fraction=min_fraction,
                      min_labelled=min_labelled, bands=bands, train_fraction=train_fraction,
                      split_by=split_by, seed=seed, max_off_palette=max_off_palette)
    if gid_root is not None:
        manifest = build_psc(gid_root, out, opts, workers=workers, resume=resume,
                             splits=splits)
    else:
        from rsbench.datasets.builders.gid_mtl import import_gid_mtl

        manifest = import_gid_mtl(gid_mtl, out, opts, resume=resume, splits=splits)
    rep = manifest["report"]
    click.echo(f"{out}: {manifest['num_samples']} patches "
               f"({', '.join(f'{k} {v}' for k, v in manifest['splits'].items())}); "
               f"skipped: {rep.get('skipped') or 'none'}")
    click.echo(format_count_table(manifest["tasks"]["scene"]))
    click.echo(f"previews: {out}/preview/")
