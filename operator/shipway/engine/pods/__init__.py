"""The pod half: the manifests of the pods a plan asks for."""
