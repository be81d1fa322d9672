"""Launchers: the runs of a table (or the seeds of one run) as separate processes, several at
once on this machine (:mod:`rsbench.launch.local`) or as SLURM jobs through submitit
(:mod:`rsbench.launch.slurm`), and what each planned run is doing (:mod:`rsbench.launch.status`).

Every run is ``rsbench run ... --seed S --resume``, the command a serial ``reproduce`` runs, so a
launched run is trained by the same code as a serial one; the launchers only decide where and
when. What a launch did is kept in ``OUT/.rsbench-launch/`` (:mod:`rsbench.launch.ledger`).
"""
