"""`rsbench models`: list the registered models and count their parameters as Table II does
(MTLN benchmarks) or as Table VII does (taiga: parameters and FLOPs of the HSI models)."""

from __future__ import annotations

import csv
import io

import click

BENCHMARK_NAMES = ["msc", "mini-msc", "psc5", "psc15", "taiga"]


@click.group()
def models() -> None:
    """Registered models and their parameter counts.

    \b
    Example:
      rsbench models list
      rsbench models params --benchmark msc
      rsbench models params --benchmark psc5 --format latex
      rsbench models params --benchmark taiga
    """


@models.command("list")
def list_models() -> None:
    """Print every registered model name with a one-line description.

    \b
    Example:
      rsbench models list
    """
    import sys

    from rsbench.models import model_factories

    factories = model_factories()
    width = max(len(n) for n in factories)
    for name in sorted(factories):
        factory = factories[name]
        doc = (factory.__doc__ or sys.modules[factory.__module__].__doc__ or "").strip()
        click.echo(f"{name:<{width}}  {doc.splitlines()[0] if doc else ''}")


@models.command()
@click.option("--benchmark", type=click.Choice(BENCHMARK_NAMES), default="msc",
              show_default=True, help="Benchmark whose backbone and tasks set the counts.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv", "latex"]),
              default="markdown", show_default=True, help="Table format.")
def params(benchmark: str, fmt: str) -> None:
    """Print the MTLN paper's Table II for our MTLN, then every method's total parameters,
    each next to the paper's figure, then those of every other registered model over the
    benchmark's backbone (MTAN, MMoE, CGC, PLE, DSelect-k, LTB: no paper figure). Models are
    built on the meta device: no memory, no data.
    With --benchmark taiga: every HSI model's parameters and GFLOPs of one 45×45×110 window
    next to the HSI paper's Table VII, with a note per row, then LibMTL's architectures over
    the HSI encoder (no paper figure).

    \b
    Example:
      rsbench models params --benchmark msc
      rsbench models params --benchmark mini-msc --format csv > params.csv
      rsbench models params --benchmark taiga --format latex
    """
    if benchmark == "taiga":
        from rsbench.models.hsi_params import BANDS, WINDOW, table_vii

        caption = (f"Table VII sizes, taiga: parameters and GFLOPs of one forward pass of one "
                   f"{WINDOW}x{WINDOW}x{BANDS} window (multiply-add = 2 FLOPs, "
                   "torch.utils.flop_counter; the paper does not state its input or convention)")
        click.echo(format_table(*table_vii(), fmt, caption).rstrip("\n"))
        return
    from rsbench.models.paper_params import BENCHMARKS, table_ii, totals

    spec = BENCHMARKS[benchmark]
    caption2 = (f"Table II, {benchmark} ({spec.backbone}): parameters of each MTLN component "
                "(attention modules: per task)")
    caption3 = f"Total parameters per method, {benchmark} ({spec.backbone})"
    out = [format_table(*table_ii(benchmark), fmt, caption2),
           format_table(*totals(benchmark), fmt, caption3)]
    click.echo("\n".join(out).rstrip("\n"))


def _cell(value: object, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value)) if fmt == "csv" else f"{value / 1e6:.2f}M"
    return str(value)


def format_table(header: list[str], rows: list[list[object]], fmt: str, caption: str) -> str:
    """One table as Markdown (with a caption line), CSV (raw counts) or a LaTeX tabular."""
    cells = [[_cell(v, fmt) for v in row] for row in rows]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([h or "row" for h in header])
        writer.writerows(cells)
        return buf.getvalue() + "\n"
    if fmt == "latex":
        esc = [[c.replace("%", r"\%").replace("_", r"\_") for c in r] for r in [header, *cells]]
        lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}",
                 rf"\begin{{tabular}}{{l{'r' * (len(header) - 1)}}}", r"\hline",
                 " & ".join(esc[0]) + r" \\", r"\hline",
                 *(" & ".join(r) + r" \\" for r in esc[1:]), r"\hline", r"\end{tabular}",
                 r"\end{table}"]
        return "\n".join(lines) + "\n\n"
    lines = [f"**{caption}**", "", "| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
             *("| " + " | ".join(r) + " |" for r in cells)]
    return "\n".join(lines) + "\n\n"
