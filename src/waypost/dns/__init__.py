"""Consul's DNS interface: `NAME.service.consul`, `NODE.node.consul`, ….

`server.py` is the asyncio UDP and TCP transport, `answers.py` turns one
question into records from the registry's catalog (through
`waypost.core.queries`, the selection HTTP's `?passing` uses), `names.py`
reads a question's name, `trim.py` fits an answer into its transport. Like
HTTP, DNS sees only `waypost.registry.Registry`, never the agent.
"""
