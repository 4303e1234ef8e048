-- Why each call ended (caller_hangup, callee_hangup, caller_cancelled, unanswered, max_duration, dead_leg,
-- shutdown, media_timeout), Sqlite dialect. Keep in step with ../postgres/0006_cdr_end_reason.sql.
-- NULL for attempts refused before a call started, and for records written before this column existed.

ALTER TABLE cdrs ADD COLUMN end_reason TEXT;
