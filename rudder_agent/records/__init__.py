"""A run directory as typed records: the bottom layer every reader and writer of a run goes through.

A run directory holds ``config.json``, ``summary.json`` and per rank r a metric stream
``metrics-rank{r}.jsonl`` (kind-tagged JSON lines: minibatch, decision, epoch, eval, oracle,
controller) and, when traced, ``trace-rank{r}.json`` and ``trace-rank{r}.rtf``. One module per
record family; :mod:`rudder_agent.records.run` reads a whole directory.
"""
