"""The planning half: what should exist now, decided from the status and the pods."""
