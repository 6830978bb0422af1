"""Shipway: Codeship Pro pipelines run natively on Kubernetes."""

__version__ = "0.1.0"

GROUP = "shipway.dev"
VERSION = "v1alpha1"
KIND = "Pipeline"
PLURAL = "pipelines"
