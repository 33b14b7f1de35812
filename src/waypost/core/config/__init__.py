"""Cluster-wide configuration kept as rows: Consul's config entries, and the
few settings Consul keeps in its state store (autopilot, the Connect CA).

Pure, as the rest of `core/`: values in, values out, no I/O.
"""
