-- Is the pipeline current? One heartbeat row per stage, written by the stream
-- worker's leader after every circle-level pass, whether or not any level
-- changed (and even when there are no circles). The `PipelineStalled` rule and
-- `baogong status` read it.
CREATE TABLE pipeline_status (
    id              text PRIMARY KEY,                   -- 'levels': the circle-level timer
    levels_at       timestamptz NOT NULL,               -- the computed_at of the last level pass
    lag_reports     bigint,                             -- supply messages on the broker not yet written; NULL = unknown
    lag_s           double precision,                   -- about how old the oldest unwritten one is; NULL = unknown
    worker          text NOT NULL,                      -- who computed it: worker id, host and pid
    updated_at      timestamptz NOT NULL DEFAULT now()
);
