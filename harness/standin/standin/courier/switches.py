"""Courier's switches: its known v9 weak spots (defaults = real v9.2.1) and one planted bug."""

from __future__ import annotations

from standin.common.switches import Switch, Switches, load_switches

SERVICE = "courier"

DECLARED: list[Switch] = [
    Switch(
        "spool",
        True,
        "On a DB failure while writing an inbound message, write it to $COURIER_SPOOL_DIR/msgs and still "
        "answer 200 (false: answer 400 and keep nothing).",
        "Spool: if (2) or (3) fails, the message JSON is written to $COURIER_SPOOL_DIR/msgs/<unixnano>.json "
        "and the caller still gets 200.",
    ),
    Switch(
        "spool_dedup",
        False,
        "When flushing a spooled message, skip the insert if a row with its uuid exists (a fix v9 lacks).",
        "No fsync, and no unique constraint on msgs_msg.uuid: a crash between insert and delete, or two "
        "couriers sharing one spool, replays a duplicate row.",
    ),
    Switch(
        "spool_flush_s",
        30.0,
        "Seconds between two passes of the spool flusher.",
        "A flusher retries every 30 s and deletes the file on success.",
    ),
    Switch(
        "spool_delete_delay_ms",
        0,
        "Test aid: pause between a flushed insert and the spool file's deletion, so a crash can be placed "
        "in that window deterministically (v9 has the same window, microseconds long).",
        "a crash between insert and delete ... replays a duplicate row.",
    ),
    Switch(
        "seen_mark_delay_ms",
        0,
        "Test aid: pause between a written (and queued) or spooled inbound message and its seen-msgs mark, so a "
        "crash can be placed in that window deterministically (v9 has the same window, a Redis round trip long).",
        "de-dup in Redis: key seen-msgs ... (courier@v9.2.1 backends/rapidpro/msg.go writeMsg marks it last, "
        "after the insert and the MULTI).",
    ),
    Switch(
        "status_batch_ms",
        500,
        "Longest time a status update waits in memory before the batch writer commits it.",
        "Status callbacks ... written by a 500 ms batch writer; SIGKILL within ~500 ms after a send loses "
        "the in-memory W status write.",
    ),
    Switch(
        "channel_cache_s",
        60,
        "Seconds a channel looked up from the DB stays in the in-memory cache.",
        "Every handler error is 400, including a failed channel lookup while Postgres is down and the 60 s "
        "in-memory channel cache is cold.",
    ),
    Switch(
        "seen_msgs_interval_s",
        2,
        "Interval of the `seen-msgs` de-dup hash (two intervals are kept: a repeat is caught for 1-2x this).",
        "de-dup in Redis: key seen-msgs holds channel|urn -> last msg uuid + SHA1(text); a repeat within "
        "2-4 s returns 200 with the first uuid and writes nothing.",
    ),
    Switch(
        "sent_guard",
        True,
        "Check the msgs_sent_<date> sets before a send and skip ids already sent (false: send anyway).",
        "Duplicate-send guard: Redis sets msgs_sent_<YYYY_MM_DD> (today and yesterday) of msg ids, added on "
        "W/S, removed on E. An id already present -> status W, no send.",
    ),
    Switch(
        "nonretryable_fails",
        True,
        "v9.2.x (default): a non-2xx answer other than 5xx, or a failed mt_response_check, fails the message "
        "(F) at once, as courier v9.2.1's external handler returns a non-retryable send error; false: v9.0.x, "
        "every unsuccessful send is E (retried).",
        "Send result: a connection error or a 5xx -> E (retried as above); any other non-2xx, or a failed "
        "mt_response_check -> F at once. In v9.0.x every failure was E.",
    ),
    Switch(
        "send_timeout_s",
        30.0,
        "HTTP client timeout of a send.",
        "Any 2xx (plus the response check) -> status W; otherwise E. Client timeout 30 s.",
    ),
    Switch(
        "batch_requeue_s",
        3.0,
        "Delay before the rest of a multi-message batch popped from the queue becomes due again.",
        "The rest of a multi-message batch is re-added ~3 s later (a flow's replies arrive ~3 s apart).",
    ),
    Switch(
        "redis_read_timeout_s",
        0.0,
        "Seconds a Redis command waits for its reply; 0 (default, v9.2.x): forever, as redisx's pool dials with "
        "redigo and no read deadline, so a black-holed Redis stalls the foreman, the dethrottler and every "
        "inbound request until the connection is closed. 5: the stand-in's earlier behaviour (each command "
        "gives up after 5 s).",
        "Redis clients have no read timeout: ... A command whose bytes are black-holed blocks forever.",
    ),
    Switch(
        "redis_connect_timeout_s",
        30.0,
        "Seconds to establish a Redis connection: 30 (default, v9.2.x) is redigo v1.9's default dial timeout; "
        "5: the stand-in's earlier behaviour.",
        "courier and mailroom build their pools with redisx NewPool, which dials with redigo redis.Dial.",
    ),
    Switch(
        "exit_without_redis",
        True,
        "v9.2.x (default): when Redis does not answer a PING at start, log 'redis not reachable' and exit "
        "non-zero (courier v9.2.1's dethrottler dereferences the nil pool and panics), so a supervisor must "
        "restart it; false: the stand-in's earlier behaviour, start anyway and retry every call.",
        "Redis unreachable at start: NewPool gives a nil pool and the first Get panics; courier and mailroom exit.",
    ),
    Switch(
        "session_timeouts",
        True,
        "v9.2.x (default): after a message carrying session_wait_started_on is wired or sent, set its session's "
        "timeout_on to now + session_timeout if the session still waits since that moment; false: the "
        "stand-in's earlier behaviour, timeout_on stays as mailroom wrote it at commit.",
        "timeout_on of a waiting session is ... set by courier only when the last message of the sprint is W/S.",
    ),
    Switch(
        "drop_after_ack",
        0.0,
        "PLANTED BUG: probability that an inbound message is answered 200 (with a msg uuid) but nothing is "
        "written anywhere.",
        "",
    ),
    Switch(
        "discard_spool_on_start",
        False,
        "PLANTED BUG: at start, delete the inbound messages left in the spool instead of replaying them. Only a "
        "courier stopped while it held spooled messages loses any: one killed while Postgres was failing over "
        "(or within a flush interval after). For exploration's tests: a bug only a combination of faults shows.",
        "",
    ),
]


def load(raw: str | None = None) -> Switches:
    return load_switches(SERVICE, DECLARED, raw)
