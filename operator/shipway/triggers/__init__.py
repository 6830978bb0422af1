"""Webhooks from forges run pipelines, and the forge is told the result (issue 26).

Pure: ``signatures`` (is a delivery genuine), ``events`` (a payload read per provider),
``decide`` (does it run, under which name, with which CI values), ``forge`` (the forge's API
requests: raw files and commit statuses, as data), ``outcome`` (a Pipeline's phase as a
commit status), ``queue`` (the queue policy's waiting pushes, kept on the Repository's
status). Shell: ``http`` (sending those requests), ``receiver`` (the aiohttp server),
``cache`` (Repositories and Secrets from a watch), ``worker`` (converts, creates the
Pipeline, queues), ``reporter`` (commit statuses follow the Pipelines; queued pushes start).
"""
