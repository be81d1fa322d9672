"""`rsbench run`: train and evaluate a model on a benchmark, one run folder per seed."""

from __future__ import annotations

import os

import click

from rsbench.cli.launch_options import FIELDS as LAUNCH_FIELDS
from rsbench.cli.launch_options import carry_out, launch_options
from rsbench.training.weighting import available_weightings


class SeedsOption(click.Option):
    """``--seed 0 1 2`` (also ``--seed 0,1,2`` or ``--seed 0 --seed 1``): eats following integers."""

    def add_to_parser(self, parser, ctx):
        result = super().add_to_parser(parser, ctx)
        for name in self.opts:
            opt = parser._long_opt.get(name) or parser._short_opt.get(name)
            if opt is None:
                continue
            previous = opt.process

            def process(value, state, previous=previous):
                values = [value]
                while state.rargs and state.rargs[0].replace(",", "").isdigit():
                    values.append(state.rargs.pop(0))
                previous(",".join(values), state)

            opt.process = process
        return result


def _parse_seeds(ctx, param, values) -> list[int]:
    seeds: list[int] = []
    for v in values or ("0",):
        for part in str(v).replace(" ", ",").split(","):
            if part:
                if not part.lstrip("-").isdigit():
                    raise click.BadParameter(f"{part!r} is not an integer seed")
                if not 0 <= int(part) < 2**32:
                    raise click.BadParameter(f"seed {part} is out of range; seeds are 0 to "
                                             "2**32-1")
                seeds.append(int(part))
    return list(dict.fromkeys(seeds))


@click.command(context_settings={"show_default": True})
@click.argument("benchmark")
@click.option("--model", "model", required=True,
              help="Registered model name; `rsbench models list` lists every model with "
                   "what it is (an unknown name lists them too).")
@click.option("--data", required=True, type=click.Path(path_type=str),
              help="Built dataset folder of the kind the benchmark expects.")
@click.option("--backbone", default=None, help="Backbone (default: the benchmark's).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs (default: the benchmark's).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Batch size per task and step, over all processes (default: benchmark's).")
@click.option("--input-size", type=click.IntRange(min=0), default=None,
              help="Side the images are resized to on the device (default: the benchmark's, "
                   "224 as in the papers; 0 = keep the dataset's own size).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Learning rate (default: the benchmark's, 1e-4).")
@click.option("--seed", "seeds", cls=SeedsOption, multiple=True, callback=_parse_seeds,
              help="One or more seeds, e.g. --seed 0 1 2 (one run each).  [default: 0]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              help="auto: the GPU when there is one.")
@click.option("--amp/--no-amp", default=None,
              help="Mixed precision (bf16 where supported). Default: on for GPU, off for CPU.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Data-loading worker processes per GPU/process (0 = in the main process). "
                   "Default: a few, leaving one core free.")
@click.option("--out", default="runs", type=click.Path(path_type=str),
              help="Runs folder; each run goes to OUT/BENCHMARK/METHOD/FINGERPRINT/SEED "
                   "(FINGERPRINT: 8 hex digits of the hash of every setting that changes "
                   "results).")
@click.option("--resume", is_flag=True,
              help="Continue unfinished runs with the same settings from their last "
                   "checkpoint; finished ones are left as they are (nothing to do, exit 0).")
@click.option("--max-train-batches", type=click.IntRange(min=1), default=None,
              help="Cap the steps per epoch (quick trials).")
@click.option("--weights", type=click.Path(path_type=str), default=None,
              help="ImageNet weights for the backbone (fine-tune, transfer): a local "
                   "torchvision state-dict file, or 'imagenet' to download torchvision's "
                   "(fine-tune's default).")
@click.option("--from", "from_run", type=click.Path(path_type=str), default=None,
              help="Transfer benchmarks: a finished MSC run folder to start from.")
@click.option("--frozen", is_flag=True,
              help="Transfer: freeze the pretrained shared branch; train a new linear "
                   "classifier only.")
@click.option("--weighting", type=click.Choice(available_weightings()), default=None,
              help="Task weighting (any model, any benchmark). Default: the model's own "
              "(uncertainty for --model uncertainty), else the benchmark's (equal; taiga: "
              "uncertainty). The method is named MODEL+WEIGHTING when it differs from the "
              "default; its options: --set weighting.KEY=VALUE (e.g. weighting.c=0.4).")
@click.option("--gradnorm-alpha", type=click.FloatRange(min=0), default=None,
              help="GradNorm's restoring-force strength alpha (default 1.5); names the method "
              "MODEL+gradnormALPHA.")
@click.option("--tensorboard", is_flag=True,
              help="Also log losses (per step and epoch), task weights, learning rate and test "
                   "metrics to RUN/tensorboard/ (needs the optional extra: pip install "
                   "'rsbench[tensorboard]'); view with `tensorboard --logdir runs`.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Override any benchmark setting (repeatable): a dotted key of the config "
                   "(rsbench/configs/BENCHMARK.json, copied to each run's config.json), a JSON "
                   "value, e.g. --set model_options.width=16 --set "
                   "task_types.classification.loss_options.gamma=0 --set "
                   "scheduler.warmup_epochs=0. The run keeps its method name; its fingerprint (and "
                   "folder) changes, and reports show it as its own row.")
@launch_options
def run(benchmark: str, model: str, data: str, backbone: str | None, epochs: int | None,
        batch_size: int | None, input_size: int | None, lr: float | None, seeds: list[int], device: str,
        amp: bool | None, workers: int | None, out: str, resume: bool,
        max_train_batches: int | None, weights: str | None, from_run: str | None,
        frozen: bool, weighting: str | None, gradnorm_alpha: float | None,
        tensorboard: bool, settings: tuple[str, ...], launch) -> None:
    """Train and evaluate MODEL on BENCHMARK (one file of rsbench/configs/, e.g. msc, mini-msc,
    psc5, psc15, transfer-eurosat, taiga, taiga-centre; an unknown name lists them), writing
    OUT/BENCHMARK/METHOD/FINGERPRINT/SEED/ with config.json, history.csv,
    checkpoint.pt (every epoch), confusion PNGs, run.log and, last, metrics.json.

    Runs on several GPUs or machines with torchrun (one process per GPU).

    \b
    Example:
      rsbench run mini-msc --model mtln --data mini-msc --seed 0 1 2
      rsbench run psc5 --model cross-stitch --data psc5 --epochs 30 --resume
      rsbench run transfer-eurosat --model fine-tune --data eurosat-t --weights resnet34.pth
      rsbench run transfer-eurosat --model mtln --data eurosat-t --from runs/msc/mtln/1a2b3c4d/0
      torchrun --nproc-per-node 4 -m rsbench run msc --model mtln --data msc
      rsbench run taiga --model hsi-mtl --data taiga --weighting gradnorm --seed 0 1 2
      rsbench run msc --model mtln --data msc --weighting pcgrad
      rsbench run psc5 --model shared-specific --data psc5 --weighting mgda
      rsbench run taiga --model hsi-mtl --data taiga --set model_options.width=16
      rsbench run msc --model mtln --data msc --seed 0 1 2 --jobs 3
      rsbench run msc --model mtln --data msc --seed 0 1 2 --launcher slurm --partition gpu \\
          --gpus-per-run 1 --time 2-00:00:00
    """
    if launch.parallel:  # one process (or SLURM job) per seed, each this command, one seed
        _launch_seeds(click.get_current_context(), seeds, out, launch)
        return
    from rsbench.training.runner import run_benchmark

    cfg, requests = prepare_runs(benchmark, model, data, backbone, epochs, batch_size,
                                 input_size, lr, seeds, device, amp, workers, out, resume,
                                 max_train_batches, weights, from_run, frozen, weighting,
                                 gradnorm_alpha, tensorboard, settings)
    for req in requests:
        seed = req.seed
        metrics = run_benchmark(cfg, req)
        if int(os.environ.get("RANK", "0")) == 0:
            parts = []
            for task, m in metrics["tasks"].items():
                parts += [f"{task} {label} {100 * m[k]:.2f}" for k, label in
                          (("oa", "OA"), ("miou", "mIoU"), ("miou_per_image", "mIoU per image"),
                           ("pa", "PA")) if m.get(k) is not None]
            reg = [m for m in metrics["tasks"].values() if m.get("rmse") is not None]
            if reg:  # continuous variables (taiga): their means, in normalised units
                r2 = [m["r2"] for m in reg if m.get("r2") is not None and m["r2"] == m["r2"]]
                parts.append(f"RMSE {sum(m['rmse'] for m in reg) / len(reg):.4f}"
                             + (f", R² {sum(r2) / len(r2):.3f}" if r2 else "")
                             + f" (mean of {len(reg)} continuous)")
            scored = [m["pixels_scored"] for m in metrics["tasks"].values()
                      if m.get("pixels_scored") is not None]
            if scored and cfg.get("protocol"):  # taiga: which pixels the figures count
                parts.append(f"{cfg['protocol']} protocol, {max(scored):,} labelled pixels "
                             "scored")
            click.echo(f"{metrics['benchmark']} {metrics['method']} seed {seed}: "
                       + ", ".join(parts) + f" [{metrics.get('run_folder')}, fingerprint "
                       f"{metrics.get('fingerprint')}]")


def prepare_runs(benchmark: str, model: str, data: str, backbone: str | None, epochs: int | None,
                 batch_size: int | None, input_size: int | None, lr: float | None,
                 seeds: list[int], device: str, amp: bool | None, workers: int | None, out: str,
                 resume: bool, max_train_batches: int | None, weights: str | None,
                 from_run: str | None, frozen: bool, weighting: str | None,
                 gradnorm_alpha: float | None, tensorboard: bool, settings: tuple[str, ...]
                 ) -> tuple[dict, list]:
    """The benchmark config and one RunRequest per seed that `rsbench run` options describe
    (checked: a bad combination is a UsageError before anything runs)."""
    from rsbench.errors import UsageError
    from rsbench.training.config import apply_settings, load_benchmark
    from rsbench.training.runner import RunRequest
    from rsbench.training.weighting import choose_weighting

    if frozen and not (from_run or weights):
        raise UsageError("--frozen needs pretrained weights to freeze: give --weights FILE or "
                         "--from RUN")
    cfg = load_benchmark(benchmark, {"backbone": backbone, "epochs": epochs,
                                     "batch_size": batch_size, "lr": lr,
                                     "input_size": input_size})
    if gradnorm_alpha is not None and (weighting or "gradnorm") != "gradnorm":
        raise UsageError(f"--gradnorm-alpha is GradNorm's; it does not go with --weighting "
                         f"{weighting}")
    choose_weighting(cfg, model, weighting or ("gradnorm" if gradnorm_alpha is not None
                                               else None), gradnorm_alpha)
    if settings:
        cfg["settings"] = apply_settings(cfg, settings)  # checked again on --resume
    if from_run and not cfg.get("transfer"):
        raise UsageError(f"--from is for the transfer benchmarks; {benchmark!r} is not one")
    if workers is None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        workers = max(0, min(6, (os.cpu_count() or 1) // world - 1))
    requests = []
    for seed in seeds:
        requests.append(RunRequest(model=model, data=data, seed=seed, out=out, device=device,
                                   amp=amp, workers=workers, resume=resume,
                                   max_train_batches=max_train_batches, weights=weights,
                                   from_run=from_run, frozen=frozen, tensorboard=tensorboard))
    return cfg, requests


def run_folders(args: list[str]) -> list:
    """The run folder each seed of ``rsbench run ARGS`` (``args[0]``: "run") trains in
    (nothing is run or written): how launchers and `rsbench status` find a run's folder."""
    import inspect

    from rsbench.training.runner import Run

    ctx = run.make_context("rsbench run", list(args[1:] if args[:1] == ["run"] else args))
    wanted = inspect.signature(prepare_runs).parameters
    cfg, requests = prepare_runs(**{k: v for k, v in ctx.params.items() if k in wanted})
    return [Run(cfg, req).dir for req in requests]


def run_in_process(args: list[str]) -> str | None:
    """``rsbench run ARGS`` (``args[0] == "run"``) in this process (one import of torch for a
    whole table): None when it finished, else its one-line error. A failure is returned, never
    raised, so that a launch's other runs still go ahead; Ctrl-C is raised again."""
    from rsbench.errors import RsbenchError

    try:
        run.main(args=list(args[1:]), prog_name="rsbench run", standalone_mode=False)
    except click.exceptions.Abort:  # click's form of Ctrl-C: the whole launch stops
        raise KeyboardInterrupt from None
    except click.ClickException as exc:
        return " ".join(exc.format_message().split())
    except RsbenchError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - one failed run must not stop the table
        return f"unexpected {type(exc).__name__}: {exc}"
    return None


def command_args(ctx: click.Context, skip: set[str]) -> list[str]:
    """The command line (after the program name) that gives ``ctx``'s parameters again, less
    those named in ``skip``."""
    args: list[str] = [ctx.info_name or "run"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in skip or value is None:
            continue
        if isinstance(param, click.Argument):
            args.append(str(value))
        elif getattr(param, "is_flag", False):
            if param.secondary_opts:  # --amp/--no-amp: whichever was given
                args.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                args.append(param.opts[0])
        elif param.multiple:
            for v in value:
                args += [param.opts[0], str(v)]
        elif value != param.default:
            args += [param.opts[0], str(value)]
    return args


def _launch_seeds(ctx: click.Context, seeds: list[int], out: str, launch) -> None:
    """`rsbench run --seed 0 1 2 --jobs N` (or --launcher slurm): one job per seed."""
    from rsbench.errors import RsbenchError
    from rsbench.launch.jobs import RunJob

    base = command_args(ctx, {"seeds", *LAUNCH_FIELDS})
    if "--resume" not in base:  # a job requeued on SLURM continues its run
        base.append("--resume")
    bench, model = ctx.params["benchmark"], ctx.params["model"]
    jobs = [RunJob(f"{bench} {model} seed {s}", [*base, "--seed", str(s)], s) for s in seeds]
    launch.extra.update(workers=ctx.params.get("workers"), device=ctx.params.get("device"))
    outcome, submitted = carry_out(jobs, out, launch, f"rsbench-{bench}-{model}")
    if submitted is not None:
        for job, job_id in submitted:
            click.echo(f"submitted {job.label}: job {job_id}")
        click.echo(f"follow them with: rsbench status {out}", err=True)
        return
    if outcome.failed:
        raise RsbenchError(f"{len(outcome.failed)} of {len(jobs)} seed(s) failed: "
                           + "; ".join(f"{label}: {why}" for label, why in outcome.failed))
