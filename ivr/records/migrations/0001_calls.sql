-- One row per call, written by the IVR engine (snapshots) and later completed with
-- what the queue observed (from AMI). Caller numbers are personal data: `ivr purge`
-- clears caller_number and caller_name after the retention period and keeps the
-- keyed hash, which is enough to count repeat callers. It clears `channel` too: trunks
-- and endpoints are often named after a phone number.
CREATE TABLE calls (
    call_id                uuid PRIMARY KEY,
    rev                    integer NOT NULL DEFAULT 0,
    uniqueid               text,
    linkedid               text,
    line_number            text,
    channel                text,
    caller_number          text,
    caller_hash            text,
    caller_name            text,
    started_at             timestamptz,
    answered_at            timestamptz,
    ended_at               timestamptz,
    path                   text,  -- the keys pressed, space-separated: "1 2"
    vertiente              text,
    area                   text,
    queue                  text,
    outcome                text CHECK (outcome IN (
                               'routed', 'closed', 'invalid', 'no_input', 'fallback',
                               'abandoned_in_menu', 'error')),
    hangup_step            text,
    privacy_notice_version text,
    menu_version           text,
    queue_result           text,
    queue_wait_seconds     double precision CHECK (queue_wait_seconds >= 0),
    agent                  text,
    talk_seconds           double precision CHECK (talk_seconds >= 0),
    hangup_cause           text,
    purged_at              timestamptz
);

-- Reports filter on the start instant and group by vertiente and area.
CREATE INDEX calls_started_at ON calls (started_at, vertiente, area);
-- Repeat callers, counted without the number.
CREATE INDEX calls_caller_hash ON calls (caller_hash, started_at);
-- `ivr purge` looks only at rows that still hold a number.
CREATE INDEX calls_unpurged ON calls (started_at) WHERE caller_number IS NOT NULL
    OR caller_name IS NOT NULL OR channel IS NOT NULL;
-- AMI events name the caller's channel by Asterisk's uniqueid.
CREATE INDEX calls_uniqueid ON calls (uniqueid);

-- The step-by-step trail of each call, for supervision. (call_id, seq) makes a replayed
-- event a no-op. No foreign key: an event may be written before its call's first row.
-- Event details describe the menu walk (steps, keys, prompts): never personal data.
CREATE TABLE call_events (
    call_id uuid NOT NULL,
    seq     integer NOT NULL CHECK (seq >= 0),
    at      timestamptz NOT NULL,
    kind    text NOT NULL,
    detail  jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (call_id, seq)
);

CREATE INDEX call_events_at ON call_events (at);
