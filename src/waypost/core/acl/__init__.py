"""Consul's ACL model, pure: tokens, policies, roles, auth methods, binding
rules as frozen values (`model`), rules parsed and compiled into an
`Authorizer` (`rules`, `authorizer`), the state in memory (`state`), the
changes that write it and their planners (`changes`, `planner`), and JWT
verification for login (`jwt`). No I/O; wall-clock time arrives as `now`.
"""
