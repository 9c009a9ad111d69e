"""The run's settings tree, below everything that uses it.

``BufferConfig`` (``rudder_agent.config``) holds a keep-policy variant (``policy``: decay, lfu,
lookahead) and a controller variant (``controller``: none, fixed, massivegnn, llm, classifier), each
a typed model with only its own settings; the ``llm`` variant is the agent's configuration
(:class:`rudder_agent.settings.agent.AgentConfig`).

Every setting has one name, its field's, from the command line to its use:
- its flag is ``--`` and the field's name with dashes (``n_threads`` -> ``--n-threads``); the tag that
  picks a variant is flagged by the field that holds the variant (``--controller``, ``--policy``);
  a flag named otherwise before stays as an alias, declared on the field (:func:`flag`);
- a replay override, a compare preset and a Studio variable (``RUDDER_AGENT_<NAME>``) use the same name.
"""
