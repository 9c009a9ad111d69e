"""Oracle labels for open-loop windows: from a labels directory, the stream's own records, or the trace."""

from __future__ import annotations

from pathlib import Path

from rudder_agent.errors import InputError, RudderError, first_line
from rudder_agent.records.run import read_rank
from rudder_agent.records.stream import stream_path
from rudder_agent.replay.labels import trajectory_labels
from rudder_agent.replay.open_loop.stream import RecordedStream
from rudder_agent.replay.open_loop.windows import applied_steps


def oracle_labels(stream: RecordedStream, labels_dir: Path | None, horizon: int,
                  compute: bool) -> tuple[dict[int, str], str | None]:
    """Oracle labels of the recorded trajectory by step, and where they came from (None: no labels).

    From ``labels_dir`` (a `rudder replay RUN --labels H` output), else the stream's own
    kind=oracle records, else (``compute``) by replaying the trace with the recorded decisions.
    """
    if labels_dir is not None:
        if not stream_path(labels_dir, stream.rank).is_file():
            raise InputError(f"--labels {labels_dir} has no metrics-rank{stream.rank}.jsonl")
        labels = read_rank(labels_dir, stream.rank).labels
        if not labels:
            raise InputError(f"--labels {labels_dir}: metrics-rank{stream.rank}.jsonl holds no kind=oracle records "
                             "(write them with `rudder replay RUN --labels H`)")
        return labels, f"--labels {labels_dir}"
    if stream.labels:
        return stream.labels, "the stream's kind=oracle records"
    traced = stream.run_dir
    # a replay's trajectory is not its recording's: only a live run's own trace labels its states
    if (not compute or stream.replay is not None or not (traced / f"trace-rank{stream.rank}.json").is_file()
            or not stream.decisions and not applied_steps(stream.minibatches)):
        return {}, None
    try:
        labels = trajectory_labels(traced, stream.rank, horizon)
    except RudderError as err:  # e.g. a killed run whose trace holds minibatches its stream lacks
        return {}, f"not computed from the trace: {first_line(err)}"
    return labels, f"computed from the trace (H={horizon})"
