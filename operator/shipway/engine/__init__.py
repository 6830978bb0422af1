"""The engine layer: pure decisions about a compiled pipeline and the pods seen so far.

Observe pods, plan the next pods and the status, name and build the manifests; no I/O, so
every decision is unit-tested without Kubernetes. Imports ``spec`` and ``models`` only.
"""
