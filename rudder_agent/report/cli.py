"""`rudder report`: the command function that rudder_agent/cli.py registers (also runnable as a module)."""

from __future__ import annotations

from pathlib import Path

import typer

from rudder_agent.decision import DEFAULT_HORIZON


def report_command(
    runs: list[Path] = typer.Argument(..., exists=True, file_okay=False,
                                      help="run directories (`rudder train`) and replay directories (`rudder replay`)"),
    out: Path = typer.Option(Path("runs/report"), help="where report.md, the CSV tables and the PNG figures go"),
    bounds: bool = typer.Option(False, "--bounds", help="also judge live runs' traces with the oracle (agreement) "
                                "and compare every buffered run with the compulsory, Belady and oracle bounds"),
    rank: int = typer.Option(0, help="trainer rank whose trajectory is plotted"),
    window: int = typer.Option(5, min=1, help="Pass@1: minibatches before and after a decision that are compared (k)"),
    eps: float = typer.Option(1.0, min=0.0, help="Pass@1 %-Hits: a change below this many points counts as unchanged"),
    eps_comm: float = typer.Option(1.0, min=0.0,
                                   help="Pass@1 comm: a change below this percentage counts as unchanged"),
    horizon: int = typer.Option(DEFAULT_HORIZON, min=1, help="oracle look-ahead in minibatches (labels and bounds)"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="write the PNG figures"),
) -> None:
    """Tables (Markdown, CSV) and figures comparing runs: %-Hits, comm volume, decisions, Pass@1, bounds."""
    from rudder_agent.passk import PassOptions
    from rudder_agent.report import tables
    from rudder_agent.report.build import write_report

    report = write_report(runs, out, with_bounds=bounds, rank=rank, horizon=horizon, figures=plots,
                          opts=PassOptions(k=window, eps_hits=eps, eps_comm=eps_comm))
    typer.echo(tables.markdown(report.runs, tables.RUNS))
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo("written: " + ", ".join(str(f) for f in report.files))


if __name__ == "__main__":
    typer.run(report_command)
