"""Webhooks from forges run pipelines, and the forge is told the result (issue 26).

Pure: ``signatures`` (is a delivery genuine), ``events`` (a payload read per provider),
``decide`` (does it run, under which name, with which CI values), ``forge`` (the forge's API
requests: raw files and commit statuses, as data), ``outcome`` (a Pipeline's phase as a
commit status). Shell: ``http`` (sending those requests), ``receiver`` (the aiohttp server),
``worker`` (reads the Repository and Secrets, converts, creates the Pipeline, reports).
"""
