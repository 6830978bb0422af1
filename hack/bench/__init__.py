"""``make bench``: Shipway's own overhead, throughput, memory, API writes and restart, measured.

Phases, each in namespaces of its own (``bench-*``) that it deletes afterwards:

1. ``overhead``: a 20-step serial pipeline of no-op busybox steps on the real kubelet, and the
   same 20 pods created back to back by a minimal script; step-to-step gaps from watch events.
2. ``scale``: many 5-step pipelines, all waiting when the operator starts, on fake kwok nodes
   (a kwok process of the benchmark's own, managing only its own nodes); throughput, gaps
   under load, apiserver write counts, the operator's peak RSS and CPU time.
   ``paced``: half as many pipelines submitted at 36 steps/s: throughput and gap sustained.
3. ``restart``: the same load, the operator SIGKILLed midway and started again; time until
   every started, unfinished pipeline progresses again, and whether any step ran twice.

Figures only: nothing here asserts a timing.
"""
