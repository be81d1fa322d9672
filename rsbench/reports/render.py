"""Render a :class:`~rsbench.reports.table.Table` as CSV, Markdown or LaTeX (booktabs)."""

from __future__ import annotations

import csv
import io

from rsbench.reports.table import Cell, Table

MISSING = "–"


def _fmt(c: Cell, d: int) -> str:
    if c.missing:
        return MISSING
    s = f"{c.mean:.{d}f}"
    if c.std is not None:
        s += f" ± {c.std:.{d}f}"
    return s


def _header(t: Table) -> list[str]:
    return [(f"{c.group} {c.label}".strip()) for c in t.columns]


def to_csv(t: Table) -> str:
    """One line per row: method, source, seeds, then mean and std per column (empty = missing)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["method", "label", "source", "seeds"]
    for h in _header(t):
        head += [h, f"{h} std"]
    w.writerow(head)
    for r in t.rows:
        line = [r.method, r.label, r.source, r.seeds if r.source == "ours" else ""]
        for c in r.cells:
            line += ["" if c.missing else round(c.mean, 4),
                     "" if c.std is None else round(c.std, 4)]
        w.writerow(line)
    return buf.getvalue()


def to_markdown(t: Table) -> str:
    """A GitHub table; the best value per column in bold with a ▲ mark."""
    head = [t.row_header, *_header(t), "Seeds"]
    lines = [f"**{t.title}**", "", "| " + " | ".join(head) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in t.rows:
        cells = []
        for c in r.cells:
            s = _fmt(c, t.decimals)
            cells.append(f"**{s}** ▲" if c.best else s)
        label = f"*{r.label}*" if r.source == "paper" else r.label
        seeds = str(r.seeds) if r.source == "ours" else "paper"
        lines.append("| " + " | ".join([label, *cells, seeds]) + " |")
    lines.append("")
    lines.append(t.legend or "Mean ± std over seeds; ▲ best of our runs; – missing (no finished "
                 "run).")
    lines += t.notes
    return "\n".join(lines) + "\n"


def _tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                 ("#", r"\#")):
        s = s.replace(a, b)
    return s


def to_latex(t: Table) -> str:
    """A booktabs table; best values in \\textbf, ± as $\\pm$, paper rows in italics."""
    n = len(t.columns)
    groups = [c.group for c in t.columns]
    lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{_tex(t.title)}}}",
             f"\\label{{tab:{t.name}}}", r"\begin{tabular}{l" + "c" * (n + 1) + "}",
             r"\toprule"]
    if any(groups):
        spans, start = [], 0
        while start < n:
            end = start
            while end + 1 < n and groups[end + 1] == groups[start]:
                end += 1
            spans.append((groups[start], start, end))
            start = end + 1
        cells = [f"\\multicolumn{{{e - s + 1}}}{{c}}{{{_tex(g)}}}" if g else
                 " & ".join([""] * (e - s + 1)) for g, s, e in spans]
        lines.append(" & " + " & ".join(cells) + r" & \\")
        rules = [f"\\cmidrule(lr){{{s + 2}-{e + 2}}}" for g, s, e in spans if g]
        lines.append(" ".join(rules))
    lines.append(" & ".join([_tex(t.row_header), *(_tex(c.label) for c in t.columns), "Seeds"])
                 + r" \\")
    lines.append(r"\midrule")
    for r in t.rows:
        cells = []
        for c in r.cells:
            if c.missing:
                cells.append("--")
                continue
            s = f"{c.mean:.{t.decimals}f}"
            if c.std is not None:
                s += f" $\\pm$ {c.std:.{t.decimals}f}"
            cells.append(f"\\textbf{{{s}}}" if c.best else s)
        label = _tex(r.label)
        if r.source == "paper":
            label, cells = f"\\textit{{{label}}}", [f"\\textit{{{c}}}" for c in cells]
        lines.append(" & ".join([label, *cells, str(r.seeds) if r.source == "ours"
                                 else "--"]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    for note in t.notes:
        lines.append(f"% {note}")
    return "\n".join(lines) + "\n"


RENDERERS = {"csv": to_csv, "markdown": to_markdown, "latex": to_latex}
