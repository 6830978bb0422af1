"""The spec layer: what a Pipeline means, decided without a cluster.

The compiler checks a ``PipelineSpec`` (services, volumes, the step tree, filters) and turns it
into the plan the engine runs; ``crd`` renders the CRD from the models. Imports only
``shipway.models``.
"""
