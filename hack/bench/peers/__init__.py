"""Benchmark peers: the same work run through Argo Workflows on the same cluster (issue 29).

Argo is a benchmark peer only: nothing of it is shipped or used by Shipway. It is built from
the Go module proxy into the version-keyed cache, installed into a namespace of its own for
the run, and removed afterwards.
"""
