"""Offline replay of recorded runs against any controller, and the bounds every controller is measured against.

``replay.cli`` imports the simulator only when a replay runs, so the command line loads without
torch and a bad option fails fast.
"""
