"""History that outlives pods and Pipelines: run records, archived step logs, retention.

The pure parts decide (``records``: a Pipeline's record; ``logs``: capping, masking and
compressing a log; ``masking``: which Secrets and values are masked; ``retention``: which
Pipelines and records go); ``store`` keeps them in SQLite or PostgreSQL through SQLAlchemy
Core. The controller feeds it (``controller/archive/``); the command line reads it.
Nothing here imports kopf or the Kubernetes client.
"""
