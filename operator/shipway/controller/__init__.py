"""The controller layer: the imperative shell that runs the engine against Kubernetes.

kopf handlers, the reconciler, the Kubernetes calls, pod watches and metrics. The only layer
of the operator that talks to the API server.
"""
