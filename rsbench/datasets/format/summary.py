"""Text views of dataset folders: the summary of a finished one (``rsbench info``), its class
count tables (what ``--resume`` will do with an unfinished one is in ``staging``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def dataset_summary(ds: Any) -> str:
    """Tasks, classes and counts per split of an open :class:`~rsbench.datasets.format.reader.Dataset`."""
    m = ds.meta
    lines = [f"{ds.root}: {m.name} built by {m.builder} "
             f"(rsbench {m.rsbench_version}, format v{m.format_version})",
             f"samples: {m.num_samples}  splits: "
             + ", ".join(f"{k} {v}" for k, v in m.splits.items())]
    split_file = m.extra.get("split_file")
    if split_file:
        source = split_file.get("from")
        origin = (f"from the file {source['path']} (sha256 {source['sha256'][:16]}...)"
                  if source else "drawn by the builder")
        lines.append(f"split: {origin}; {split_file['file']} holds it "
                     f"({split_file['rows']} keys)")
    for aname, a in m.arrays.items():
        lines.append(f"array {aname}: {a.dtype} {'x'.join(map(str, a.shape))} ({a.layout})")
    for tname, t in ds.tasks.items():
        lines.append("")
        lines.append(f"task {tname} ({t['type']}, {len(t['classes'])} classes)")
        lines.append(format_count_table(t))
    return "\n".join(lines)


def format_count_table(task: Mapping[str, Any]) -> str:
    """Class × split count table as aligned text."""
    counts: dict[str, dict[str, int]] = task.get("counts", {})
    splits = sorted(counts, key=lambda s: ({"train": 0, "val": 1, "test": 2}.get(s, 3), s))
    if not splits:
        return "  (no counts)"
    classes = task["classes"]
    width = max(8, *(len(c) for c in classes))
    head = "  " + "class".ljust(width) + "".join(s.rjust(12) for s in splits) + "total".rjust(12)
    out = [head]
    for c in classes:
        vals = [counts[s].get(c, 0) for s in splits]
        out.append("  " + c.ljust(width) + "".join(f"{v:12d}" for v in vals)
                   + f"{sum(vals):12d}")
    tot = [sum(counts[s].values()) for s in splits]
    out.append("  " + "total".ljust(width) + "".join(f"{v:12d}" for v in tot)
               + f"{sum(tot):12d}")
    return "\n".join(out)
