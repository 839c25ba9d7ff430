-- A labeler's sessions (the answer's "seconds since first shown" looks up every session of the
-- labeler; disabling a labeler deletes them) and a session's form tokens per task (that lookup,
-- and the cascade when a session is deleted).
CREATE INDEX sessions_labeler ON sessions (labeler);
CREATE INDEX form_tokens_session_task ON form_tokens (session, task);
