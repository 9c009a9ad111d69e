"""The ``rudder`` command line: partition graphs, train on a local DistDGL cluster."""

from __future__ import annotations

import copy
import functools
import json
import shutil
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from pydantic import ValidationError

from rudder_agent.config import BufferConfig, ModelConfig, TrainConfig
from rudder_agent.errors import RudderError
from rudder_agent.log import configure_logging

app = typer.Typer(
    help="Rudder: persistent remote-feature buffers for DistDGL, steered by an LLM agent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def user_errors(fn: Callable) -> Callable:
    """Print RudderError messages without a traceback and exit non-zero."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RudderError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        except ValidationError as exc:  # a bad option value, caught by the typed configuration
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            typer.secho(f"error: invalid settings: {problems}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.secho("interrupted: every process was stopped", fg=typer.colors.YELLOW, err=True)
            raise typer.Exit(130) from None

    return wrapper

# Options shared by `train` and `compare`, defined once.
DatasetOpt = Annotated[str, typer.Option(help="dataset name (see `rudder datasets`)")]
PartsOpt = Annotated[int, typer.Option(help="partitions = machines = trainers")]
MethodOpt = Annotated[str, typer.Option(help="partitioning: metis or random")]
BatchOpt = Annotated[int, typer.Option(help="seed nodes per minibatch")]
ModelOpt = Annotated[str, typer.Option(help="llm controller: model string")]
PromptOpt = Annotated[str, typer.Option(help="llm controller: prompt template version")]
CotOpt = Annotated[bool, typer.Option("--cot", help="llm controller: chain-of-thought")]
LlmThreadsOpt = Annotated[int, typer.Option(help="llm controller: llama.cpp threads of the embedded model")]
LlmTimeoutOpt = Annotated[float, typer.Option(help="llm controller: seconds per model call before a fallback")]
PeriodOpt = Annotated[int, typer.Option(help="massivegnn: replace every P minibatches")]


def parse_fanouts(text: str) -> list[int]:
    """'10,25' -> [10, 25]; anything but positive integers is refused before any work starts."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise typer.BadParameter(f"expected comma-separated positive integers like 10,25, got {text!r}")
    return values


@app.callback()
def main(log_level: str = typer.Option("info", help="debug, info, warning or error")) -> None:
    """Configure logging for every command."""
    configure_logging(log_level)


@app.command()
@user_errors
def datasets() -> None:
    """List the datasets Rudder can load and where each is read from."""
    from rudder_agent.data import DATASETS

    for name, description in DATASETS.items():
        typer.echo(f"{name:14s} {description}")


@app.command()
@user_errors
def partition(
    dataset: str = typer.Option(..., help="dataset name (see `rudder datasets`)"),
    parts: int = typer.Option(2, help="number of partitions (machines)"),
    method: str = typer.Option("metis", help="metis or random"),
    force: bool = typer.Option(False, help="rebuild even if a cached partition exists"),
) -> None:
    """Partition a dataset with DGL's partition_graph (cached by dataset/parts/method)."""
    from rudder_agent.dist.partition import partition_dataset

    info = partition_dataset(dataset, parts, method, force=force)
    typer.echo(json.dumps(info.model_dump(mode="json"), indent=2))


@app.command()
@user_errors
def train(
    dataset: DatasetOpt = "ogbn-arxiv",
    parts: PartsOpt = 2,
    epochs: int = typer.Option(3, help="training epochs"),
    out: Path = typer.Option(Path("runs/latest"), help="run directory (metrics, logs, summary.json)"),
    method: MethodOpt = "metis",
    batch_size: BatchOpt = 1000,
    fanouts: str = typer.Option("10,25", help="neighbours sampled per layer, comma-separated"),
    hidden: int = typer.Option(256, help="GraphSAGE hidden size"),
    lr: float = typer.Option(0.003, help="Adam learning rate"),
    seed: int = typer.Option(0, help="random seed"),
    controller: str = typer.Option("none", help="none, fixed, massivegnn, llm or classifier"),
    buffer_fraction: float = typer.Option(0.25, help="buffer capacity as a fraction of the partition's halo nodes"),
    delta: float = typer.Option(1.0, help="score gain when a buffered node is sampled"),
    gamma: float = typer.Option(0.95, help="score decay per round a buffered node is not sampled"),
    tau: Optional[float] = typer.Option(None, help="staleness threshold (default gamma**25)"),
    period: PeriodOpt = 32,
    sync: bool = typer.Option(False, "--sync", help="wait for a controller decision every minibatch"),
    model: ModelOpt = "llamacpp:smollm2-135m",
    prompt_version: PromptOpt = "v1",
    cot: CotOpt = False,
    fallback: str = typer.Option("skip", help="llm controller: skip or rule, on invalid answers and timeouts"),
    llm_threads: LlmThreadsOpt = 1,
    llm_timeout: LlmTimeoutOpt = 30.0,
    classifier_path: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                                   help="classifier controller: trained artefact (.rcls)"),
    finetune_every: int = typer.Option(0, min=0, help="classifier controller: refit the head every N decisions"),
    trace: bool = typer.Option(False, "--trace", help="record the per-minibatch access trace"),
    trace_only: bool = typer.Option(False, "--trace-only", help="record traces without backward/optimizer steps"),
    timeout: float = typer.Option(3600.0, help="give up after this many seconds"),
    overwrite: bool = typer.Option(False, help="replace an existing run directory"),
    verify: bool = typer.Option(False, "--verify", help="check every served feature row against the DistTensor"),
    trainer: Optional[Path] = typer.Option(None, help="run your own trainer script instead (gets --config FILE)"),
    network: str = typer.Option("loopback", help="loopback, or netns: a namespace per machine with shaped links (root)"),
    link_rate: str = typer.Option("1gbit", help="netns: tc tbf rate of each machine's link, e.g. 1gbit, 200mbit"),
    fail_at_step: Optional[int] = typer.Option(None, hidden=True, help="testing aid: trainer 0 raises at this step"),
) -> None:
    """Partition (cached), start a local DistDGL cluster and train GraphSAGE; writes summary.json."""
    require_network(network)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise RudderError(f"{out} already holds a run; pass --overwrite or choose another --out")
        shutil.rmtree(out)
    cfg = train_config(
        dataset, parts, epochs, out, method, batch_size, fanouts, hidden, lr, seed,
        dict(controller=controller, fraction=buffer_fraction, delta=delta, gamma=gamma, tau=tau, period=period,
             mode="sync" if sync else "async", model=model, prompt_version=prompt_version, cot=cot,
             fallback=fallback, llm_threads=llm_threads, llm_timeout_s=llm_timeout, classifier_path=classifier_path.resolve() if classifier_path else None,
             finetune_every=finetune_every),
        trace=trace or trace_only, trace_only=trace_only, verify=verify, fail_at_step=fail_at_step,
        network=network, link_rate=link_rate,
    )
    from rudder_agent.controllers import make_controller

    make_controller(cfg.buffer).close()  # configuration errors (e.g. no --classifier-path) stop before any launch
    from rudder_agent.compare import run_training

    summary = run_training(cfg, timeout, trainer)
    if summary is None:
        for log in sorted((out / "logs").glob("trainer-*.log")):
            typer.echo(f"--- {log.name}\n{log.read_text()[-2000:]}")
    else:
        typer.echo(format_summary(summary))


def train_config(dataset: str, parts: int, epochs: int, out: Path, method: str, batch_size: int, fanouts: str,
                 hidden: int, lr: float, seed: int, buffer: dict, **extra) -> TrainConfig:
    """Partition (cached) and build the validated run configuration."""
    from rudder_agent.dist.partition import partition_dataset

    parsed_fanouts = parse_fanouts(fanouts)  # a typo stops before partitioning
    info = partition_dataset(dataset, parts, method)
    return TrainConfig(
        dataset=dataset, parts=parts, part_method=method, part_config=info.config_path.resolve(),
        graph_name=info.graph_name, epochs=epochs, batch_size=batch_size, fanouts=parsed_fanouts,
        seed=seed, model=ModelConfig(hidden=hidden, lr=lr), buffer=BufferConfig(**buffer),
        out_dir=out.resolve(), **extra,
    )


def require_network(network: str) -> None:
    """Refuse ``--network netns`` where namespaces cannot be made, before anything is partitioned or started."""
    if network == "netns":
        from rudder_agent.dist.netns import availability

        if reason := availability():
            raise RudderError(reason)


@app.command()
@user_errors
def compare(
    dataset: DatasetOpt = "ogbn-arxiv",
    parts: PartsOpt = 2,
    epochs: int = typer.Option(3, help="training epochs per run"),
    out: Path = typer.Option(Path("runs/compare"), help="one sub-directory per run, plus comparison.md"),
    controllers: str = typer.Option("none,fixed,massivegnn,llm", help="comma-separated; none is always included"),
    fractions: str = typer.Option("0.25", help="buffer fractions, comma-separated"),
    method: MethodOpt = "metis",
    batch_size: BatchOpt = 1000,
    fanouts: str = typer.Option("10,25", help="neighbours sampled per layer"),
    seed: int = typer.Option(0, help="random seed (the same for every run)"),
    model: ModelOpt = "llamacpp:smollm2-135m",
    prompt_version: PromptOpt = "v1",
    cot: CotOpt = False,
    sync: bool = typer.Option(False, "--sync", help="llm controller: wait for a decision every minibatch"),
    llm_threads: LlmThreadsOpt = 1,
    llm_timeout: LlmTimeoutOpt = 30.0,
    period: PeriodOpt = 32,
    classifier_path: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                                   help="classifier controller: trained artefact (.rcls)"),
    timeout: float = typer.Option(3600.0, help="per run, in seconds"),
    overwrite: bool = typer.Option(False, help="re-run variants whose summary.json already exists"),
    network: str = typer.Option("loopback", help="loopback, or netns: a namespace per machine with shaped links (root)"),
    link_rate: str = typer.Option("1gbit", help="netns: tc tbf rate of each machine's link"),
) -> None:
    """Run several controllers on one partition in one session; print them side by side with ratios to none."""
    from rudder_agent.compare import compare as run_all, write_comparison

    require_network(network)
    base = train_config(
        dataset, parts, epochs, out, method, batch_size, fanouts, 256, 0.003, seed,
        dict(model=model, prompt_version=prompt_version, cot=cot, mode="sync" if sync else "async", period=period,
             llm_threads=llm_threads, llm_timeout_s=llm_timeout,
             classifier_path=classifier_path.resolve() if classifier_path else None),
        network=network, link_rate=link_rate,
    )
    summaries = run_all(base, [c.strip() for c in controllers.split(",") if c.strip()],
                        [float(f) for f in fractions.split(",")], timeout, overwrite)
    typer.echo(write_comparison(out.resolve(), summaries))


def format_summary(s: dict) -> str:
    """A few human lines for the end of a run."""
    acc = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    return (
        f"{s['dataset']} x{s['parts']} [{s['controller']}]: {s['epochs']} epochs, {s['minibatches']} minibatches\n"
        f"  epoch time (median after first): {s['epoch_time_s']:.2f} s\n"
        f"  remote share of input nodes: {100 * s['remote_share']:.1f}%  comm rows/epoch: {s['comm_rows_per_epoch']:.0f}"
        f"  %-Hits: {s['hit_pct']:.1f}\n"
        f"  val acc {acc(s['val_acc'])}  test acc {acc(s['test_acc'])}  (majority class {acc(s['majority_test_acc'])})"
    )


def _register_replay_commands() -> None:
    """`rudder replay`, `bounds` and `report` live with the simulator and the report builder."""
    from rudder_agent.report.cli import report_command
    from rudder_agent.replay.cli import bounds_command, replay_command

    app.command("replay")(user_errors(replay_command))
    app.command("bounds")(user_errors(bounds_command))
    app.command("report")(user_errors(report_command))


_register_replay_commands()


def _register_classifier_commands() -> None:
    """`rudder classifiers ...` lives with the classifiers; its errors print like every command's."""
    from rudder_agent.classifiers.cli import classifiers_app

    # Wrap copies: the sub-app itself must behave the same whether or not this module was imported.
    wrapped = copy.copy(classifiers_app)
    wrapped.registered_commands = []
    for command in classifiers_app.registered_commands:
        command = copy.copy(command)
        command.callback = user_errors(command.callback)
        wrapped.registered_commands.append(command)
    app.add_typer(wrapped, name="classifiers")


_register_classifier_commands()


if __name__ == "__main__":
    app()
