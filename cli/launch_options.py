"""The options of `reproduce` and `run` that say where runs go: --jobs (this machine, several
at once), --launcher slurm (a cluster, through submitit) and the SLURM resources."""

from __future__ import annotations

import functools

import click

from rsbench.launch.options import LaunchOptions

FIELDS = ("launcher", "jobs", "gpus_per_run", "threads_per_run", "partition", "account",
          "time", "mem", "cpus_per_run", "sbatch", "slurm_setup")


def launch_options(f):
    """Add the launch options to command ``f``, which receives them as ``launch``."""
    options = [
        click.option("--jobs", "-j", type=click.IntRange(min=1), default=1,
                     help="Runs at once on this machine, each in its own process (`rsbench run "
                          "... --seed S`); with GPUs each gets --gpus-per-run of them, on CPU "
                          "each gets cores/N threads. 1: one after another in this process."),
        click.option("--gpus-per-run", type=click.IntRange(min=0), default=None,
                     help="GPUs each run gets (CUDA_VISIBLE_DEVICES; over 1: torchrun, one "
                          "process per GPU); SLURM: --gpus-per-node of each job. Default: 1 "
                          "locally when there are GPUs, none on SLURM.")
        ,
        click.option("--threads-per-run", type=click.IntRange(min=1), default=None,
                     help="CPU threads per run with --jobs (default: cores // jobs). The thread "
                          "count changes floating-point sums: runs are bit-identical to a "
                          "serial run at the same thread count."),
        click.option("--launcher", type=click.Choice(["local", "slurm", "submitit-local"]),
                     default="local",
                     help="local: this machine (--jobs); slurm: one SLURM job per run (a job "
                          "array; needs pip install 'rsbench[slurm]'); submitit-local: the "
                          "same jobs as local processes, to try a set-up."),
        click.option("--partition", default=None, help="SLURM partition."),
        click.option("--account", default=None, help="SLURM account."),
        click.option("--time", default="24:00:00", help="SLURM time limit per job; a job that "
                     "reaches it is requeued and resumes where it stopped."),
        click.option("--mem", default=None, help="SLURM memory per job, e.g. 32G."),
        click.option("--cpus-per-run", type=click.IntRange(min=1), default=None,
                     help="SLURM CPUs per job (--cpus-per-task)."),
        click.option("--sbatch", multiple=True, metavar="KEY=VALUE",
                     help="Another #SBATCH line, e.g. --sbatch qos=high --sbatch "
                          "constraint=a100 (repeatable)."),
        click.option("--slurm-setup", multiple=True, metavar="LINE",
                     help="A shell line run in each job before the run, e.g. 'module load "
                          "cuda' (repeatable)."),
    ]

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        kwargs["launch"] = LaunchOptions(**{k: kwargs.pop(k) for k in FIELDS}).check()
        return f(*args, **kwargs)

    for opt in reversed(options):
        wrapper = opt(wrapper)
    return wrapper


def carry_out(jobs, out: str, launch: LaunchOptions, name: str):
    """Run ``jobs`` as ``launch`` says: (Outcome, None) for local launches, (None, submitted
    [(job, job id)]) for SLURM and submitit-local."""
    from rsbench.cli.run import run_folders, run_in_process
    from rsbench.launch.local import LocalLauncher, make_slots, visible_gpus

    if launch.launcher == "local":
        if launch.jobs == 1 and launch.threads_per_run is None and not launch.gpus_per_run:
            return LocalLauncher(jobs, out, run_folders, execute=run_in_process).run(), None
        on_cpu = launch.gpus_per_run == 0 or launch.extra.get("device") == "cpu"
        gpus = [] if on_cpu else visible_gpus()
        slots = make_slots(launch.jobs, gpus, launch.gpus_per_run or 1, launch.threads_per_run,
                           workers=launch.extra.get("workers"))
        return LocalLauncher(jobs, out, run_folders, slots=slots).run(), None
    from rsbench.launch.slurm import submit

    return None, submit(jobs, out, launch, name, run_in_process, run_folders)
