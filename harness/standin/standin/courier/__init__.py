"""Stand-in for nyaruka/courier v9: the External (EX) channel's receive, status and send paths.

Reproduces the behaviour RapidPro's message gateway shows under faults (spool, de-dup window, batched
status writes, the Redis send queue and its sent guard), not its code. See docs/standin/courier.md.
"""
