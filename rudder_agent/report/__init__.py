"""Reports over live runs and replays: tables like the paper's Tables 2-4, Pass@1 with intervals, figures.

``report.cli`` imports the rest only when a report is written, so the command line loads without
torch or matplotlib.
"""
