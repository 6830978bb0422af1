"""The single node and its control plane: start, stop, configuration, certificates, processes."""
