"""Pictures of built datasets: the ``preview/*.png`` every builder writes (``psc``, ``scenes``,
``taiga``, drawn on the Pillow thumbnail ``grid``) and one sample as a matplotlib figure
(``sample_plot``, behind ``TaskDataset.plot`` and ``rsbench info --plot``); ``chart_worker``
draws a long build's charts in a process that loaded matplotlib while the build ran.
"""
