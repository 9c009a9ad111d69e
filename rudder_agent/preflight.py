"""Every check a command can make before it partitions a graph or starts a process, in one place.

`train`, `compare` and `replay` call one function here first. A setting that cannot work stops the
command with one line naming the option (``error: --model: ...``) and exit code 2, before any
partition, run directory, server, trainer or model process exists. What is checked:

- every option's value and range: the typed settings (``rudder_agent.config``), the dataset name,
  the buffer fractions and controllers of `compare`, the timeout, a `--trainer` script,
  an emulated network this host can make (root, iproute2) and a `--link-rate` tc understands;
- whatever the chosen controller needs, through its own ``preflight`` hook (the `llm` agent: the
  model string, its files, the prompt version's templates, and whether an Ollama or OpenAI-compatible
  server answers, with a short timeout; the `classifier`: the artefact, its format and feature schema).

Code below the command line names a setting by its field (``SettingError("timeout_s", ...)``);
:func:`option_for` turns the field into the running command's option (``--llm-timeout``): every
option is named after the field it sets (:mod:`rudder_agent.settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rudder_agent.config import BufferConfig, TrainSettings
from rudder_agent.errors import RudderError, SettingError
from rudder_agent.settings.buffer import buffer_setting_names


def option_for(field: str) -> str:
    """The running command's option (or argument) that sets ``field``; ``--field-name`` outside a command."""
    from typer._click.globals import get_current_context  # typer vendors click: its commands and contexts

    ctx = get_current_context(silent=True)
    params = {p.name: p for p in ctx.command.params} if ctx is not None else {}
    param = params.get(field)
    if param is None:
        return "--" + field.replace("_", "-")
    if param.param_type_name == "argument":
        return param.name.upper()
    return max((o for o in param.opts if o.startswith("--")), key=len, default=param.opts[0])


def named(err: SettingError) -> SettingError:
    """``err`` naming the option that sets its field (unchanged if it names one already)."""
    return err if err.option else err.for_option(option_for(err.field))


def problem_message(problem: dict[str, Any]) -> str:
    """A pydantic problem's message; a variant's unknown tag reads like any unknown choice."""
    if problem["type"] != "union_tag_invalid":
        return problem["msg"]
    *others, last = problem["ctx"]["expected_tags"].split(", ")
    return f"Input should be {', '.join(others)} or {last}"


def from_validation(exc: ValidationError) -> SettingError:
    """A pydantic error on the settings as one SettingError: the first problem, named by its option."""
    problem = exc.errors()[0]
    fields = [part for part in problem["loc"] if isinstance(part, str)]
    field = fields[-1] if fields else "settings"
    value = problem["ctx"]["tag"] if problem["type"] == "union_tag_invalid" else problem.get("input")
    got = f" (got {value!r})" if isinstance(value, (str, int, float, bool, Path)) or value is None else ""
    more = f"; and {len(exc.errors()) - 1} more problem(s)" if len(exc.errors()) > 1 else ""
    return named(SettingError(field, f"{problem_message(problem)}{got}{more}"))


def controller(cfg: BufferConfig) -> None:
    """What the controller ``cfg`` names needs, checked by its own class on its own settings."""
    from rudder_agent.registry import preflight

    preflight(cfg.controller)


def dataset(name: str) -> None:
    """A dataset the registry knows (``synthetic:N`` included)."""
    from rudder_agent.data.registry import resolve

    try:
        resolve(name)
    except RudderError as err:
        raise SettingError("dataset", str(err)) from None


def run_settings(settings: TrainSettings, timeout: float) -> None:
    """What `train` and `compare` share: the time limit and the emulated link (the dataset comes last)."""
    if not timeout > 0:
        raise SettingError("timeout", f"must be a positive number of seconds, got {timeout}")
    if settings.network == "netns":
        from rudder_agent.cluster.netns import availability

        if reason := availability():  # no root or no iproute2: a setting this host cannot run, like any other
            raise SettingError("network", reason)
        from rudder_agent.records.floors import rate_bytes_per_s

        try:  # the rate tc is given, and the link floor's divisor
            rate_bytes_per_s(settings.link_rate)
        except RudderError as err:
            raise SettingError("link_rate", str(err)) from None
    if settings.hosts is not None:
        hosts(settings)


def hosts(settings: TrainSettings) -> None:
    """A hosts file with one line per machine, ssh to reach them, and no emulated network on top."""
    import shutil

    from rudder_agent.cluster.hosts import read_hosts

    if settings.network == "netns":
        raise SettingError("hosts", "--hosts and --network netns are mutually exclusive: the hosts' own network "
                                    "carries the run")
    named = read_hosts(settings.hosts)
    if len(named) != settings.parts:
        raise SettingError("hosts", f"{settings.hosts} names {len(named)} host(s) but the run has {settings.parts} "
                                    f"machines (--parts): one line per machine")
    if settings.ssh_config is not None and not settings.ssh_config.is_file():
        raise SettingError("ssh_config", f"{settings.ssh_config} is not a file")
    if shutil.which("ssh") is None:
        raise SettingError("hosts", "ssh was not found on PATH (Debian: apt-get install openssh-client)")


def train(settings: TrainSettings, *, timeout: float, trainer: Path | None,
          trainer_args: list[str] | None = None) -> None:
    """Everything `rudder train` can check before it partitions or starts anything."""
    run_settings(settings, timeout)
    if trainer is not None and not trainer.is_file():
        raise SettingError("trainer", f"{trainer} is not a file")
    if trainer_args:
        if trainer is None:
            raise SettingError("trainer", f"arguments for a trainer script ({' '.join(trainer_args)}) need "
                                          "--trainer SCRIPT (give them after `--`)")
        from rudder_agent.cluster.script_args import check

        check(trainer_args)
    controller(settings.buffer)
    if settings.own_graph is None:  # an own graph was checked when its source was resolved
        dataset(settings.dataset)  # last: the dataset registry imports DGL, which the run needs anyway


def compare(settings: TrainSettings, values: dict[str, Any], *, controllers: str, fractions: str,
            timeout: float, compute_floor_from: Path | None = None) -> tuple[list, list[float]]:
    """Everything `rudder compare` can check first; its variants and buffer fractions, parsed.

    ``values``: the buffer settings given (by name), each variant's base. ``compute_floor_from``: a loopback
    compare's directory, for the compute floors of a compare on the emulated network (its runs are matched and
    checked once the partition is known)."""
    from rudder_agent.compare import PRESETS, parse_variants
    from rudder_agent.registry import LIVE

    run_settings(settings, timeout)
    if compute_floor_from is not None:
        if settings.network != "netns" or settings.hosts is not None:
            raise SettingError("compute_floor_from", "only with --network netns: the floors are the emulated "
                                                     "network's (a loopback run is its own compute floor)")
        if not Path(compute_floor_from).is_dir():
            raise SettingError("compute_floor_from", f"{compute_floor_from} is not a directory (give the --out of "
                                                     "a rudder compare on loopback)")
    specs = parse_variants(controllers)
    unknown = [v.label for v in specs if v.controller not in LIVE]
    if not any(c.strip() for c in controllers.split(",")) or unknown:
        raise SettingError("controllers", f"expected a comma-separated list of NAME or NAME@POLICY, NAME one of "
                                          f"{', '.join([*LIVE, *PRESETS])}"
                                          f"{'; unknown: ' + ', '.join(unknown) if unknown else ''}")
    try:
        shares = [float(f) for f in fractions.split(",") if f.strip()]
    except ValueError:
        shares = []
    if not shares:
        raise SettingError("fractions", f"expected comma-separated numbers like 0.05,0.25, got {fractions!r}")
    for share in shares:
        try:
            settings.buffer.with_values({"fraction": share})
        except ValidationError as exc:
            raise SettingError("fractions", f"{share}: {exc.errors()[0]['msg']}") from None
    for v in specs:  # what a variant needs does not depend on the size
        try:
            buffer = v.buffer(values, shares[0])
        except ValidationError as exc:
            raise SettingError("controllers", f"{v.label}: {problem_message(exc.errors()[0])}") from None
        controller(buffer)
    if settings.own_graph is None:
        dataset(settings.dataset)
    return specs, shares


def replay(trace: Path, controller_name: str, *, rank: int | None, mode: str | None, values: dict[str, Any],
           horizon: int) -> dict[str, Any]:
    """Everything `rudder replay` can check before it writes anything; the overrides the replay applies.

    ``values``: the settings given (by name; unset ones are the recorded run's). The buffer's own (keep
    policy, scoring) apply for every controller; a controller's, for a controller that takes them (an
    analysis controller names its ``replay_options``, ``horizon`` among them).
    """
    from rudder_agent.config import read_run_config
    from rudder_agent.registry import controller_class, preflight_replay, replay_options
    from rudder_agent.records.trace import recorded_ranks

    config = trace / "config.json"
    if not config.is_file():
        raise SettingError("trace", f"{trace} is not a recorded run ({config.name} is missing); "
                                    "record one with `rudder train --trace`")
    try:
        recorded = read_run_config(config).buffer
    except (ValueError, OSError) as err:
        raise SettingError("trace", f"{config} is unreadable: {err}") from None
    try:
        ranks = recorded_ranks(trace)
    except RudderError as err:
        raise SettingError("trace", str(err)) from None
    if rank is not None and rank not in ranks:
        raise SettingError("rank", f"{trace} has no trace of rank {rank}; traced ranks: {', '.join(map(str, ranks))}")
    if mode not in (None, "async", "sync"):
        raise SettingError("mode", f"must be async or sync, not {mode!r}")
    try:
        cls = controller_class(controller_name)
    except RudderError as err:
        raise SettingError("controller", str(err)) from None
    buffer = buffer_setting_names()
    takes = options if (options := replay_options(cls)) is not None else set(values) - buffer
    overrides = {k: v for k, v in {**values, "horizon": horizon}.items() if k in buffer or k in takes}
    recorded.with_values({k: v for k, v in overrides.items() if k in buffer})
    preflight_replay(cls, recorded, **overrides)
    return overrides
