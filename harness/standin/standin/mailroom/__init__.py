"""Stand-in for RapidPro's mailroom v9: handler and batch queues, flow sessions, courier queueing, crons."""
