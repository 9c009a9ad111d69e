"""A run directory as typed records: the bottom layer every reader and writer of a run goes through.

A run directory holds ``config.json``, ``summary.json`` and per rank r a metric stream
``metrics-rank{r}.jsonl`` (kind-tagged JSON lines: minibatch, decision, epoch, eval, oracle,
controller) and, when traced, ``trace-rank{r}.json`` and ``trace-rank{r}.rtf``. One module per
record family; the minibatch record is :mod:`rudder_agent.metrics`, which the live side shares;
``summary.json`` is :class:`rudder_agent.records.run_summary.RunSummary`, computed by
:mod:`rudder_agent.records.summary`.
:mod:`rudder_agent.records.run` reads a whole directory; replay, report, classifiers and
open-loop replay read through it.
"""
