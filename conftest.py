"""Root of the project's pytest runs (tests/ and experiments/).

The `resilience` pytest plugin (options, the `experiment` marker, the `cluster`/`history`/`nemesis`/
`workload`/`experiment` fixtures) is registered by the installed package's `pytest11` entry point, so it
is active here and in any other project that installs `resilience`; nothing needs wiring in this file.
"""
