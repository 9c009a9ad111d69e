"""Offline replay of recorded runs against any controller, and the bounds every controller is measured against."""

from rudder_agent.replay.belady import Bound, belady, compulsory
from rudder_agent.replay.bounds import bounds
from rudder_agent.replay.oracle import Oracle, OracleJudge, OracleLabel
from rudder_agent.replay.recording import Recording, load_recording, recorded_ranks
from rudder_agent.replay.simulator import replay, replay_run

__all__ = ["Bound", "Oracle", "OracleJudge", "OracleLabel", "Recording", "belady", "bounds", "compulsory",
           "load_recording", "recorded_ranks", "replay", "replay_run"]
