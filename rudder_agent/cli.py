"""The ``rudder`` command line: partition graphs, train on a local DistDGL cluster."""

from __future__ import annotations

import copy
import functools
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from pydantic import ValidationError
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

from rudder_agent import preflight
from rudder_agent.config import BufferConfig, GNNConfig, GraphSource, TrainConfig, TrainSettings
from rudder_agent.errors import InputError, RudderError, SettingError
from rudder_agent.log import configure_logging
from rudder_agent.options import field_default, given, opt, option_group, setting_options, setting_values
from rudder_agent.records.run_summary import RunSummary


class OneLineErrors(TyperGroup):
    """A command line whose usage errors (an option out of range, a missing file) are one line, like the others."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            fail(f"{exc.format_message()} (see `{command} --help`)", exc.exit_code)


app = typer.Typer(
    cls=OneLineErrors,
    help="Rudder: persistent remote-feature buffers for DistDGL, steered by an LLM agent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int) -> None:
    """Print ``error: message`` on one line of stderr and exit with ``code``."""
    typer.secho(f"error: {' '.join(message.split())}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def user_errors(fn: Callable) -> Callable:
    """Print RudderError messages without a traceback and exit non-zero (2 for a setting, naming its option)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SettingError as exc:  # found before anything started
            fail(str(preflight.named(exc)), exc.exit_code)
        except RudderError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(exc.exit_code) from None
        except ValidationError as exc:  # a bad option value, caught by the typed configuration
            fail(str(preflight.from_validation(exc)), 2)
        except KeyboardInterrupt:
            typer.secho("interrupted: every process was stopped", fg=typer.colors.YELLOW, err=True)
            raise typer.Exit(130) from None

    return wrapper


B, G, T, S = BufferConfig, GNNConfig, TrainSettings, GraphSource  # every option below takes its default and help here

OWN_GRAPH = {  # partition, train, compare: your own graph instead of a named dataset
    "graph": (Optional[Path], opt(S, "graph")),
    "part_config": (Optional[Path], opt(S, "part_config")),
    "feat_key": (str, opt(S, "feat_key")),
    "label_key": (str, opt(S, "label_key")),
    "mask_keys": (str, opt(S, "mask_keys")),
    "feat_dim": (int, opt(S, "feat_dim")),
}
RUN = {  # train, compare: how the cluster trains
    "part_method": (str, opt(T, "part_method", "--method")),
    "trainers_per_machine": (int, opt(T, "trainers_per_machine")),
    "batch_size": (int, opt(T, "batch_size")),
    "fanouts": (str, opt(T, "fanouts")),
    "hidden": (int, opt(G, "hidden")),
    "lr": (float, opt(G, "lr")),
    "prefetch": (int, opt(T, "prefetch")),
    "pull_from": (str, opt(T, "pull_from")),
    "pull_chunk_ms": (float, opt(T, "pull_chunk_ms")),
    "network": (str, opt(T, "network")),
    "link_rate": (str, opt(T, "link_rate")),
    "hosts": (Optional[Path], opt(T, "hosts")),
    "ssh_config": (Optional[Path], opt(T, "ssh_config")),
}
COMPARED = ("controller", "fraction")
"""Buffer settings `compare` takes as lists of its own (--controllers, --fractions)."""


def parse_fanouts(text: str) -> list[int]:
    """'10,25' -> [10, 25]; anything but positive integers is refused before any work starts."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise typer.BadParameter(f"expected comma-separated positive integers like 10,25, got {text!r}",
                                 param_hint="'--fanouts'")
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
@option_group("graph_options", OWN_GRAPH)
def partition(
    ctx: typer.Context,
    dataset: Optional[str] = opt(T, "dataset", default=None, note=" (required unless --graph or --part-config)"),
    parts: int = opt(T, "parts"),
    part_method: str = opt(T, "part_method", "--method"),
    force: bool = typer.Option(False, help="rebuild even if a cached partition exists"),
    graph_options: dict = None,
) -> None:
    """Partition a dataset or your own graph with DGL's partition_graph (cached by dataset or content/parts/method)."""
    source = own_graph(ctx, **graph_options)
    if source is None and dataset is None:
        raise InputError("give --dataset, --graph or --part-config")
    info = partition_source(dataset, source, parts, part_method, parts_given=given(ctx, "parts"), force=force)
    typer.echo(json.dumps(info.model_dump(mode="json"), indent=2))


def own_graph(ctx: typer.Context, graph: Optional[Path], part_config: Optional[Path], feat_key: str, label_key: str,
              mask_keys: str, feat_dim: int) -> Optional[GraphSource]:
    """The --graph/--part-config source (resolved: absolute path, content digest), or None for a named dataset."""
    keyed = [f"--{n.replace('_', '-')}" for n in ("feat_key", "label_key", "mask_keys", "feat_dim") if given(ctx, n)]
    if graph is None and part_config is None:
        if keyed:
            raise InputError(f"{', '.join(keyed)} only apply with --graph or --part-config")
        return None
    if graph is not None and part_config is not None:
        raise InputError("--graph and --part-config are mutually exclusive: give one")
    if given(ctx, "dataset"):
        raise InputError(f"--dataset and {'--graph' if graph else '--part-config'} are mutually exclusive: "
                         "give one")
    from rudder_agent.data.own import resolve_source

    return resolve_source(GraphSource(graph=graph, part_config=part_config, feat_key=feat_key, label_key=label_key,
                                      mask_keys=[k.strip() for k in mask_keys.split(",")], feat_dim=feat_dim))


@app.command()
@user_errors
@option_group("options", {**RUN, **setting_options(), **OWN_GRAPH})
def train(
    ctx: typer.Context,
    dataset: str = opt(T, "dataset"),
    parts: int = opt(T, "parts"),
    epochs: int = opt(T, "epochs"),
    out_dir: Path = typer.Option(Path("runs/latest"), "--out", help="run directory (metrics, logs, summary.json)"),
    seed: int = opt(T, "seed"),
    trace: bool = opt(T, "trace", "--trace"),
    trace_only: bool = opt(T, "trace_only", "--trace-only"),
    timeout: float = typer.Option(3600.0, help="give up after this many seconds"),
    overwrite: bool = typer.Option(False, help="replace an existing run directory"),
    verify: bool = opt(T, "verify", "--verify"),
    trainer: Optional[Path] = typer.Option(
        None, help="run your own DistDGL script on every trainer instead: it gets the ARGS after `--` verbatim, "
                   "placeholders filled ({ip_config}, {part_config}, {graph_name}, {epochs}, {batch_size}, "
                   "{fanouts}, {out}, {config}), or `--config {config}` without ARGS"),
    script_args: Optional[list[str]] = typer.Argument(None, metavar="-- ARGS", show_default=False,
                                                      help="--trainer: the script's own arguments"),
    options: dict = None,
) -> None:
    """Partition (cached), start a local DistDGL cluster and train GraphSAGE; writes summary.json.

    With --trainer SCRIPT, your own script trains instead (DGL's example, a few attach lines added):
    rudder train --part-config P.json --controller llm --trainer SCRIPT -- --ip_config {ip_config} ...
    """
    settings = train_settings(ctx, options, dataset=dataset, parts=parts, epochs=epochs, seed=seed, out_dir=out_dir,
                              trace=trace or trace_only, trace_only=trace_only, verify=verify)
    # every setting, before anything is written or started
    preflight.train(settings, timeout=timeout, trainer=trainer, trainer_args=script_args)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise RudderError(f"{out_dir} already holds a run; pass --overwrite or choose another --out")
        shutil.rmtree(out_dir)
    cfg = train_config(settings, parts_given=given(ctx, "parts"))
    from rudder_agent.cluster.training import run_training

    summary = run_training(cfg, timeout, trainer, script_args)
    if trainer is not None:  # the script's own output: the end of each trainer's log
        for log in sorted((out_dir / "logs").glob("trainer-*.log")):
            typer.echo(f"--- {log.name}\n{log.read_text()[-2000:]}")
    if summary is not None:
        typer.echo(format_summary(summary))


def train_settings(ctx: typer.Context, options: dict[str, Any], *, dataset: str, **settings: Any) -> TrainSettings:
    """The run settings of train and compare: their own options, and the groups they share (RUN, the buffer's
    settings, OWN_GRAPH) as ``options``."""
    run, graph = ({k: options[k] for k in group} for group in (RUN, OWN_GRAPH))
    if run["hosts"] is not None and not given(ctx, "parts"):  # one machine per host, unless --parts says otherwise
        from rudder_agent.cluster.hosts import read_hosts

        settings["parts"] = len(read_hosts(run["hosts"]))
    source = own_graph(ctx, **graph)
    return TrainSettings(
        part_method=run["part_method"], trainers_per_machine=run["trainers_per_machine"], batch_size=run["batch_size"], fanouts=parse_fanouts(run["fanouts"]),
        gnn=GNNConfig(hidden=run["hidden"], lr=run["lr"]), prefetch=run["prefetch"], pull_from=run["pull_from"],
        pull_chunk_ms=run["pull_chunk_ms"],
        network=run["network"],
        link_rate=run["link_rate"], hosts=run["hosts"], ssh_config=run["ssh_config"], buffer=BufferConfig.from_values(buffer_values(options)), **settings,
        **dataset_settings(dataset, source))


def buffer_values(options: dict[str, Any]) -> dict[str, Any]:
    """The buffer settings among the options of train and compare, by name (each checked, whatever runs it)."""
    values = setting_values({k: v for k, v in options.items() if k not in RUN and k not in OWN_GRAPH})
    BufferConfig.check_values(values)
    return values


def dataset_settings(dataset: str, source: Optional[GraphSource]) -> dict[str, Any]:
    """What a run records as its graph: the dataset's name, or your own graph and a name for it."""
    if source is None:
        return {"dataset": dataset}
    from rudder_agent.data.own import run_name

    return {"dataset": run_name(source), "own_graph": source}


def partition_source(dataset: Optional[str], source: Optional[GraphSource], parts: int, method: str, *,
                     parts_given: bool, force: bool = False):
    """The cached partition of a named dataset, or of your own graph (whose parts may come from the partition)."""
    from rudder_agent.cluster.own_graph import partition_own_graph
    from rudder_agent.cluster.partition import partition_dataset

    rebuild = {"force": True} if force else {}  # train never rebuilds: the partitioners' default stays theirs
    if source is None:
        return partition_dataset(dataset, parts, method, **rebuild)
    return partition_own_graph(source, parts if parts_given else None, method, **rebuild)


def train_config(settings: TrainSettings, parts_given: bool = True) -> TrainConfig:
    """Partition (cached) and add where the partition lies to the validated run settings."""
    from rudder_agent.cluster.partition import METHODS

    info = partition_source(settings.dataset, settings.own_graph, settings.parts, settings.part_method,
                            parts_given=parts_given)
    update: dict[str, Any] = {}
    if settings.own_graph is not None:
        update = {"parts": info.parts, **({"part_method": info.method} if info.method in METHODS else {})}
    return TrainConfig.model_validate({**dict(settings), **update, "out_dir": settings.out_dir.resolve(),
                                       "part_config": info.config_path.resolve(), "graph_name": info.graph_name})


@app.command()
@user_errors
@option_group("options", {**RUN, **setting_options(skip=COMPARED), **OWN_GRAPH})
def compare(
    ctx: typer.Context,
    dataset: str = opt(T, "dataset"),
    parts: int = opt(T, "parts"),
    epochs: int = opt(T, "epochs", note=" per run"),
    out_dir: Path = typer.Option(Path("runs/compare"), "--out", help="one sub-directory per run, plus comparison.md"),
    controllers: str = typer.Option(
        "none,fixed,massivegnn,llm", help="comma-separated variants: a controller, NAME@POLICY for another keep policy "
        "(fixed@decay), or paper (the paper's Rudder: llm@decay, prompt v1, no what-if); none is always included"),
    fractions: str = typer.Option(str(field_default(B, "fraction")), help="buffer fractions, comma-separated"),
    seed: int = opt(T, "seed", note=" (the same for every run)"),
    timeout: float = typer.Option(3600.0, help="per run, in seconds"),
    overwrite: bool = typer.Option(False, help="re-run variants whose summary.json already exists"),
    compute_floor_from: Optional[Path] = typer.Option(
        None, "--compute-floor-from", help="with --network netns: the --out of a rudder compare of the same variants "
        "and options on loopback; each run's epoch s there (its run of the same name) is its compute floor, beside "
        "the link floor (the busiest link direction's bytes per epoch / --link-rate). Without it the compute floor "
        "is - and vs floor is to the link floor alone"),
    options: dict = None,
) -> None:
    """Run several controllers on one partition in one session; print them side by side with ratios to none (and,
    on the emulated network, to each run's floors)."""
    from rudder_agent.compare import compare as run_all, loopback_twins, variants, write_comparison

    settings = train_settings(ctx, options, dataset=dataset, parts=parts, epochs=epochs, seed=seed, out_dir=out_dir)
    values = buffer_values(options)
    names, shares = preflight.compare(settings, values, controllers=controllers, fractions=fractions, timeout=timeout,
                                      compute_floor_from=compute_floor_from)
    base = train_config(settings, parts_given=given(ctx, "parts"))
    twins = None  # each run's loopback twin, checked before anything runs
    if compute_floor_from is not None:
        twins = loopback_twins(variants(base, values, names, shares), compute_floor_from)
    summaries = run_all(base, values, names, shares, timeout, overwrite)
    typer.echo(write_comparison(out_dir.resolve(), summaries, twins))


def format_summary(s: RunSummary) -> str:
    """A few human lines for the end of a run."""
    acc = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    several = (s.trainers_per_machine or 1) > 1
    trainers = f", {s.trainers_per_machine} trainers each" if several else ""
    if several and s.buffer_scope:
        trainers += ", one buffer per machine" if s.buffer_scope == "machine" else ", one buffer per trainer"
    return (
        f"{s.dataset} x{s.parts}{trainers} [{s.controller}]: {s.epochs} epochs, {s.minibatches} minibatches\n"
        f"  epoch time (median after first): {s.epoch_time_s:.2f} s\n"
        f"  remote share of input nodes: {100 * s.remote_share:.1f}%  comm rows/epoch: {s.comm_rows_per_epoch:.0f}"
        f"  %-Hits: {s.hit_pct:.1f}\n"
        f"  val acc {acc(s.val_acc)}  test acc {acc(s.test_acc)}  (majority class {acc(s.majority_test_acc)})"
        + "".join(f"\n  machine {m.machine} (ranks {','.join(map(str, m.ranks))}): comm rows/epoch "
                  f"{m.comm_rows_per_epoch:,.0f}, %-Hits {100 * m.hits / m.remote_inputs if m.remote_inputs else 0:.1f}"
                  for m in s.machines if several)
        + (f"\n  {share_line(s.share_cost)}" if s.share_cost else "")
        + (f"\n  {s.model_share.sentence()}" if s.model_share and s.controller == "llm" else "")
    )


def share_line(c) -> str:
    """What sharing a machine's buffer cost, in one line."""
    return (f"shared buffer: {c.waited_rows:,} rows waited for ({c.refetched_rows:,} read again); per minibatch "
            f"lock wait {c.lock_wait_ms[0]:.1f}/{c.lock_wait_ms[1]:.1f} ms, held {c.lock_hold_ms[0]:.1f}/"
            f"{c.lock_hold_ms[1]:.1f} ms, row wait {c.row_wait_ms[0]:.1f}/{c.row_wait_ms[1]:.1f} ms (median/p95)")


def _register_replay_commands() -> None:
    """`rudder replay`, `replay-metrics`, `bounds` and `report` live with the simulator and the report builder."""
    from rudder_agent.report.cli import report_command
    from rudder_agent.replay.cli import bounds_command, replay_command, replay_metrics_command

    app.command("replay")(user_errors(replay_command))
    app.command("replay-metrics")(user_errors(replay_metrics_command))
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
