"""Table VI: OA (%) on unseen datasets (PatternNet, EuroSAT) by transfer method."""

from rsbench.reports.plan import PlannedRun
from rsbench.reports.table import Column, TableSpec
from rsbench.reports.tables.registry import register_table

METHODS = [("single-task", "Scratch"),
           ("fine-tune-frozen", "Pre-trained ResNet-34 on ImageNet"),
           ("mtln-frozen", "Pre-trained shared branch on MSC (ours)"),
           ("fine-tune", "Pre-trained ResNet-34 on ImageNet + fine-tuning"),
           ("mtln-transfer", "Pre-train MTLN + fine-tuning (ours)")]

SOURCE = ("msc", "mtln")  # the MSC-trained MTLN whose shared branch is transferred (--from)
BENCHMARKS = ("transfer-patternnet", "transfer-eurosat")
RUNS = [PlannedRun(*SOURCE)] + [
    run for b in BENCHMARKS for run in (
        PlannedRun(b, "single-task"),
        PlannedRun(b, "fine-tune", ("--frozen",), weights=True),
        PlannedRun(b, "mtln", ("--frozen",), source=SOURCE),
        PlannedRun(b, "fine-tune", weights=True),
        PlannedRun(b, "mtln", source=SOURCE))]

TABLE = register_table(TableSpec("transfer", "Table VI: generalisation to unseen datasets, OA (%)", METHODS,
                                 [Column("PatternNet", "transfer-patternnet", "*.oa", paper_key="patternnet"),
                                  Column("EuroSAT", "transfer-eurosat", "*.oa", paper_key="eurosat")],
                                 paper_table="transfer", runs=RUNS))
