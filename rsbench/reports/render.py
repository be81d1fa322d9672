"""Render a :class:`~rsbench.reports.table.Table` as CSV, Markdown or LaTeX (booktabs).

With ``table.ci`` every cell of our runs also shows the 95% confidence interval of its mean
over seeds (Student t), or says that one seed gives none.
"""

from __future__ import annotations

import csv
import io

from rsbench.reports.table import Cell, Table

MISSING = "–"
NO_CI = "n/a (1 seed)"
CI_LEGEND = ("95% CI: confidence interval of the mean over seeds, mean ± t(0.975, n−1)·s/√n "
             "(Student t, n seeds, s their standard deviation); n/a with one seed; none for "
             "sizes (identical for every seed).")


def _ci(c: Cell, d: int) -> str:
    """``[lo, hi]`` of the cell's 95% CI, or that one seed gives none."""
    ci = c.ci
    return f"[{ci[0]:.{d}f}, {ci[1]:.{d}f}]" if ci else NO_CI


def _fmt(c: Cell, d: int, ci: bool = False) -> str:
    if c.missing:
        return MISSING
    s = f"{c.mean:.{d}f}"
    if c.std is not None:
        s += f" ± {c.std:.{d}f}"
    if ci and c.n:
        s += f", 95% CI {_ci(c, d)}"
    return s


def _header(t: Table) -> list[str]:
    return [(f"{c.group} {c.label}".strip()) for c in t.columns]


def to_csv(t: Table) -> str:
    """One line per row: method, source, seeds, then mean and std per column (empty = missing)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["method", "label", "source", "seeds", "seed_ids", "settings"]
    for h in _header(t):
        head += [h, f"{h} std"] + ([f"{h} ci95 low", f"{h} ci95 high"] if t.ci else [])
    w.writerow(head)
    for r in t.rows:
        ours = r.source == "ours"
        line = [r.method, r.label, r.source, r.seeds if ours else "",
                " ".join(dict.fromkeys(x.seed for x in r.runs)),
                (r.setting or "benchmark defaults") if ours and r.runs else ""]
        for c, col in zip(r.cells, t.columns):
            line += ["" if c.missing else round(c.mean, 4),
                     "" if c.std is None else round(c.std, 4)]
            if t.ci and col.better is None:
                line += ["", ""]
            elif t.ci:
                ci = c.ci
                line += [round(ci[0], 4), round(ci[1], 4)] if ci else \
                    [NO_CI if ours and c.n else "", ""]
        w.writerow(line)
    return buf.getvalue()


def to_markdown(t: Table) -> str:
    """A GitHub table; the best value per column in bold with a ▲ mark."""
    head = [t.row_header, *_header(t), "Seeds"]
    lines = [f"**{t.title}**", "", "| " + " | ".join(head) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in t.rows:
        cells = []
        for c, col in zip(r.cells, t.columns):
            s = _fmt(c, t.decimals, t.ci and r.source == "ours" and col.better is not None)
            cells.append(f"**{s}** ▲" if c.best else s)
        label = f"*{r.label}*" if r.source == "paper" else r.label
        seeds = str(r.seeds) if r.source == "ours" else "paper"
        lines.append("| " + " | ".join([label, *cells, seeds]) + " |")
    lines.append("")
    lines.append(t.legend or "Mean ± std over seeds; ▲ best of our runs; – missing (no finished "
                 "run, or only values that are not finite numbers).")
    if t.ci:
        lines.append(CI_LEGEND)
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
        for c, col in zip(r.cells, t.columns):
            if c.missing:
                cells.append("--")
                continue
            s = f"{c.mean:.{t.decimals}f}"
            if c.std is not None:
                s += f" $\\pm$ {c.std:.{t.decimals}f}"
            if t.ci and r.source == "ours" and c.n and col.better is not None:
                s += f" {_ci(c, t.decimals)}"
            cells.append(f"\\textbf{{{s}}}" if c.best else s)
        label = _tex(r.label)
        if r.source == "paper":
            label, cells = f"\\textit{{{label}}}", [f"\\textit{{{c}}}" for c in cells]
        lines.append(" & ".join([label, *cells, str(r.seeds) if r.source == "ours"
                                 else "--"]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    for note in ([CI_LEGEND] if t.ci else []) + t.notes:
        lines.append(f"% {note}")
    return "\n".join(lines) + "\n"


RENDERERS = {"csv": to_csv, "markdown": to_markdown, "latex": to_latex}
