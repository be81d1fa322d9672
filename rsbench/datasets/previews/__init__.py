"""Pictures of built datasets: the ``preview/*.png`` every builder writes (``psc``, ``scenes``,
``taiga``, drawn on the Pillow thumbnail ``grid``) and one sample as a matplotlib figure
(``sample_plot``, behind ``TaskDataset.plot`` and ``rsbench info --plot``).
"""
