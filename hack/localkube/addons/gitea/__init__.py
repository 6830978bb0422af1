"""Gitea, the forge of the triggers tests and demo: its deployment and its API client."""
