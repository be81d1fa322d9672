"""Every figure of results, as PNG (matplotlib on Agg via ``style``): confusion matrices
(``confusion``), a run's training curves (``curves``), a table as a chart (``table``),
separability heatmaps (``heatmaps``) and the HSI paper's maps, scatter plots and error
histograms (``hsi_figures``). Depends only on numpy, matplotlib and core modules, so training,
reports and the CLI all draw with it. Pictures of a built dataset (the ``preview/*.png`` a
builder writes, ``TaskDataset.plot``) are part of the dataset: :mod:`rsbench.datasets.previews`.
"""
