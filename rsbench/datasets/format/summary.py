"""Text views of dataset folders: the summary of a finished one (``rsbench info``), its class
count tables, and what ``--resume`` will do with an unfinished one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rsbench.datasets.format.manifest import MANIFEST, PARTS, STAGING
from rsbench.datasets.format.writer import BUILD, STAGES
from rsbench.locking import active_holder


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


def builder_running(root: str | Path) -> str | None:
    """"process <pid> (<what>)" when a live process holds the folder's build lock, else None."""
    held = active_holder(Path(root))
    if held is None:
        return None
    pid, what = held
    return f"process {pid if pid is not None else '?'} ({what or 'a build'})"


def resume_plan(root: str | Path) -> str:
    """What ``--resume`` will do with the unfinished build in ``root``, in one clause."""
    from rsbench.datasets.format.finalize import last_step

    root = Path(root)
    staging = root / STAGING
    if (root / MANIFEST).exists():
        return "the dataset is finished; --resume has nothing to do"
    try:
        builder = json.loads((staging / BUILD).read_text()).get("builder", "the builder")
    except (OSError, ValueError, AttributeError):
        return "no build was recorded: a build without --resume starts afresh"
    parts = sorted(p.parent.name for p in (staging / PARTS).glob("*/part.json"))
    stages = sorted(p.stem for p in (staging / STAGES).glob("*.json"))
    step = last_step(staging)
    if step is not None:
        return (f"{builder} was finalizing (last finished step: {step}); --resume redoes "
                "finalize from the staged data, reading no source again")
    if not parts and not stages:
        return (f"{builder} finished nothing yet; the same command with or without --resume "
                "starts afresh")
    done = [f"{len(parts)} finished part(s)"] if parts else []
    if stages:
        done.append(f"finished pass(es): {', '.join(stages)}")
    return (f"{builder} kept {' and '.join(done)}; --resume reads only the rest of the "
            "sources, then finalizes")
