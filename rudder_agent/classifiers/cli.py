"""`rudder classifiers train|evaluate|ood`: a typer sub-app that rudder_agent/cli.py registers."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Optional

import typer

from rudder_agent.classifiers.vocabulary import DEFAULT_EXPLORE, DEFAULT_WINDOW, LABEL_KINDS, MODEL_KINDS
from rudder_agent.settings.controllers import ClassifierSettings
from rudder_agent.errors import RudderError
from rudder_agent.options import opt
from rudder_agent.decision import DEFAULT_HORIZON

classifiers_app = typer.Typer(help="Train and evaluate the ML classifier controllers (paper §4.4).",
                              no_args_is_help=True)

TRACES = typer.Argument(..., exists=True, file_okay=False, help="runs recorded with `rudder train --trace`")
EXPLORE = typer.Option(",".join(f"{p:g}" for p in DEFAULT_EXPLORE),
                       help="replace probabilities of random-behaviour replays added per trace ('' for none)")


def _floats(text: str) -> list[float]:
    """'0.1,0.5' -> [0.1, 0.5]."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated probabilities like 0.1,0.5, got {text!r}") from None


def _labels(value: str) -> str:
    """A label kind, checked (typer has no Literal choices)."""
    if value not in LABEL_KINDS:
        raise RudderError(f"--labels must be oracle or rule, not {value!r}")
    return value


@classifiers_app.command("train")
def train_command(
    traces: list[Path] = TRACES,
    model: str = typer.Option("mlp", help="mlp, lr, rf, svm, xgb or tabnet"),
    labels: str = typer.Option("oracle", help="oracle (replay's counterfactual judge) or rule (paper §4.4)"),
    out: Path = typer.Option(..., help="artefact to write (.rcls)"),
    window: int = typer.Option(DEFAULT_WINDOW, min=1, help="minibatches summarised into one feature row"),
    horizon: int = typer.Option(DEFAULT_HORIZON, min=1, help="oracle labels: look-ahead in minibatches"),
    explore: str = EXPLORE,
    seed: int = typer.Option(0, help="random seed (split, behaviours and model)"),
) -> None:
    """Train one classifier on the decision points of recorded runs and save it."""
    from rudder_agent.classifiers.artifact import save_classifier
    from rudder_agent.classifiers.dataset import training_set
    from rudder_agent.classifiers.train import train_classifier

    labels = _labels(labels)
    data = training_set(traces, labels, window, horizon, _floats(explore), seed)
    classifier = train_classifier(data, model, labels, window, horizon, seed)
    save_classifier(classifier, out)
    v = classifier.meta.training["validation"]
    typer.echo(f"{model} on {len(data.y)} {labels}-labelled decision points ({100 * data.y.mean():.0f}% replace); "
               f"held-out accuracy {v['accuracy']:.3f} (n={v['n']}); written to {out}")


@classifiers_app.command("evaluate")
def evaluate_command(
    model: Path = typer.Argument(..., exists=True, dir_okay=False, help="a trained artefact (.rcls)"),
    traces: list[Path] = TRACES,
    horizon: int = typer.Option(DEFAULT_HORIZON, min=1, help="oracle look-ahead in minibatches"),
    finetune_every: int = opt(ClassifierSettings, "finetune_every", note="; closed loop, rule models"),
) -> None:
    """Accuracy against oracle labels on recorded states, and closed-loop replay figures, per run."""
    from rudder_agent.classifiers.artifact import load_classifier
    from rudder_agent.classifiers.controller import ClassifierController
    from rudder_agent.classifiers.dataset import load_streams
    from rudder_agent.classifiers.evaluate import closed_loop, static_scores

    classifier = load_classifier(model)
    for run in traces:
        s = static_scores(classifier, load_streams([run], horizon))
        c = closed_loop(partial(ClassifierController, classifier, finetune_every), run, horizon)
        typer.echo(f"{run}: recorded states: accuracy {s['accuracy']:.3f} (n={s['n']}, oracle replace "
                   f"{100 * s['replace_share']:.0f}%, predicted {100 * s['predicted_replace_share']:.0f}%)\n"
                   f"  closed loop: {_figures(c)}")


@classifiers_app.command("ood")
def ood_command(
    train: list[Path] = typer.Option(..., exists=True, file_okay=False, help="runs to train on (repeat)"),
    test: list[Path] = typer.Option(..., exists=True, file_okay=False, help="runs to evaluate on (repeat)"),
    models: str = typer.Option(",".join(MODEL_KINDS), help="comma-separated kinds (default: all installed)"),
    labels: str = typer.Option("oracle", help="oracle or rule"),
    window: int = typer.Option(DEFAULT_WINDOW, min=1, help="minibatches summarised into one feature row"),
    horizon: int = typer.Option(DEFAULT_HORIZON, min=1, help="oracle look-ahead in minibatches"),
    explore: str = EXPLORE,
    finetune_every: int = opt(ClassifierSettings, "finetune_every", note="; rule models"),
    seed: int = typer.Option(0, help="random seed"),
    out: Optional[Path] = typer.Option(None, help="also write the rows to this JSON file"),
    agents: str = typer.Option("", help="LLM agent model strings to evaluate beside them, e.g. llamacpp:smollm2-135m"),
) -> None:
    """Train on some configurations, replay unseen ones: accuracy vs oracle, %-Hits, comm ratio, interval."""
    from rudder_agent.classifiers.evaluate import ood
    from rudder_agent.classifiers.models import tabnet_installed

    kinds = [k.strip() for k in models.split(",") if k.strip()]
    if models == ",".join(MODEL_KINDS) and not tabnet_installed():
        typer.echo("tabnet skipped: pytorch-tabnet is not installed", err=True)
        kinds.remove("tabnet")
    rows = ood(train, test, kinds, _labels(labels), window, horizon, _floats(explore), finetune_every, seed,
               [a for a in agents.split(",") if a])
    typer.echo(markdown_table(rows))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2))


def _fmt(value: float | None, spec: str) -> str:
    """A figure, or a dash where it does not apply (no decisions, no labels)."""
    return "–" if value is None else format(value, spec)


def _figures(c: dict) -> str:
    """One line of closed-loop figures."""
    return (f"accuracy {_fmt(c['accuracy'], '.3f')}, %-Hits {c['hit_pct']:.2f}, comm ratio {c['comm_ratio']:.3f}, "
            f"interval {_fmt(c['replacement_interval'], '.2f')}, replace {_fmt(c['replace_share'], '.0%')}")


def markdown_table(rows: list[dict]) -> str:
    """One line per (test run, controller)."""
    lines = [("| test run | seen | controller | accuracy (closed loop) | accuracy (recorded) | %-Hits | comm / none "
              "| interval | replace share |"), "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['test']} | {'yes' if r['seen'] else 'no'} | {r['controller']} | "
                     f"{_fmt(r['accuracy'], '.3f')} | {_fmt(r.get('static_accuracy'), '.3f')} | {r['hit_pct']:.2f} | "
                     f"{r['comm_ratio']:.3f} | {_fmt(r['replacement_interval'], '.2f')} | "
                     f"{_fmt(r['replace_share'], '.0%')} |")
    return "\n".join(lines)
