"""Reports over live runs and replays: tables like the paper's Tables 2-4, Pass@1 with intervals, figures."""

from rudder_agent.report.build import Report, write_report
from rudder_agent.report.figures import PassOptions
from rudder_agent.report.passk import PassRate, judge, pass_rate, wilson
from rudder_agent.report.runs import Run, load_run, load_runs

__all__ = ["PassOptions", "PassRate", "Report", "Run", "judge", "load_run", "load_runs", "pass_rate", "wilson",
           "write_report"]
