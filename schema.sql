-- schema.sql - the SQLite mirror of the ACOG PostgreSQL schema
-- (shared/seeds/acog-database-schema.md v1.1 plus its post-MVP tables and the
-- youtube_quota_usage table of the ai-video-generator design).
--
-- Mapping rules: UUID -> TEXT (from libuuid); TIMESTAMPTZ -> TEXT holding
-- UTC ISO-8601 with milliseconds ('2026-11-21T10:00:00.123Z', sorts as time);
-- JSONB -> TEXT checked with json_valid(); TEXT[]/UUID[] -> TEXT holding a
-- JSON array; BOOLEAN -> INTEGER 0/1; DECIMAL -> REAL; enum types -> CHECK
-- constraints with the same values.  Table and column names are the seed's.
-- In episodes and jobs, written on every stage transition, an enum's CHECK
-- is a chain of `x = 'a' OR x = 'b' ...`: SQLite checks an IN list of more
-- than two values by building a temporary b-tree on every insert and update.
-- Columns and tables that exist only for the daemon are marked "acog-batch:".
-- This file is compiled into the binary; `init` applies it, db.c migrates.

PRAGMA foreign_keys = ON;

-- acog-batch: the version of this schema, for migrations.
CREATE TABLE schema_version (
    version     INTEGER NOT NULL
);
INSERT INTO schema_version (version) VALUES (8);

CREATE TABLE channels (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL CHECK (length(name) <= 255),
    slug            TEXT NOT NULL UNIQUE CHECK (length(slug) <= 100),
    description     TEXT,
    niche           TEXT CHECK (niche IS NULL OR length(niche) <= 100),
    persona         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(persona)),
    style_guide     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(style_guide)),
    avatar_profile  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(avatar_profile)),
    voice_profile   TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(voice_profile)),
    cadence         TEXT CHECK (cadence IS NULL OR length(cadence) <= 50),
    platform_config TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(platform_config)),
    is_active       INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at      TEXT
);
CREATE INDEX idx_channels_slug ON channels(slug) WHERE deleted_at IS NULL;
CREATE INDEX idx_channels_is_active ON channels(is_active) WHERE deleted_at IS NULL;
CREATE INDEX idx_channels_niche ON channels(niche) WHERE deleted_at IS NULL AND niche IS NOT NULL;
CREATE INDEX idx_channels_created_at ON channels(created_at DESC);

CREATE TABLE pulse_events (
    id               TEXT PRIMARY KEY,
    source           TEXT NOT NULL CHECK (length(source) <= 100),
    source_id        TEXT,
    source_url       TEXT CHECK (source_url IS NULL OR length(source_url) <= 1000),
    payload          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
    topic_tags       TEXT CHECK (topic_tags IS NULL OR json_type(topic_tags) = 'array'),
    relevance_score  REAL CHECK (relevance_score IS NULL OR relevance_score BETWEEN 0 AND 1),
    is_processed     INTEGER NOT NULL DEFAULT 0 CHECK (is_processed IN (0, 1)),
    processed_at     TEXT,
    matched_channels TEXT CHECK (matched_channels IS NULL OR json_type(matched_channels) = 'array'),
    event_timestamp  TEXT,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at       TEXT,
    -- acog-batch: the spool/pulse file it came in, and what each channel's
    -- rules made of it ("demo: idea pulse-1a2b3c4d-demo.json; tech: relevance 0.40 < 0.60").
    source_file      TEXT,
    outcome          TEXT
);
-- acog-batch: an event is known by (source, source_id); without a source_id, by its content hash.
CREATE UNIQUE INDEX idx_pulse_events_key ON pulse_events(source, source_id);
CREATE INDEX idx_pulse_events_source ON pulse_events(source) WHERE deleted_at IS NULL;
CREATE INDEX idx_pulse_events_is_processed ON pulse_events(is_processed) WHERE deleted_at IS NULL;
CREATE INDEX idx_pulse_events_score ON pulse_events(relevance_score DESC) WHERE deleted_at IS NULL AND is_processed = 0;
CREATE INDEX idx_pulse_events_created_at ON pulse_events(created_at DESC) WHERE deleted_at IS NULL;
-- The seed's GIN index on topic_tags has no SQLite equivalent; json_each() scans instead.

CREATE TABLE episodes (
    id              TEXT PRIMARY KEY,
    channel_id      TEXT NOT NULL REFERENCES channels(id) ON DELETE RESTRICT,
    pulse_event_id  TEXT REFERENCES pulse_events(id) ON DELETE SET NULL,
    title           TEXT CHECK (title IS NULL OR length(title) <= 500),
    slug            TEXT CHECK (slug IS NULL OR length(slug) <= 200),
    -- episode_status; acog-batch: adds 'metadata', the seed's standardised
    -- stage that its status enum forgot.  The review gate is 'ready'.
    status          TEXT NOT NULL DEFAULT 'idea' CHECK (
                        status = 'idea' OR status = 'planning' OR status = 'scripting' OR
                        status = 'script_review' OR status = 'metadata' OR status = 'audio' OR
                        status = 'avatar' OR status = 'broll' OR status = 'assembly' OR
                        status = 'ready' OR status = 'publishing' OR status = 'published' OR
                        status = 'failed' OR status = 'cancelled'),
    idea_source     TEXT NOT NULL DEFAULT 'manual' CHECK (
                        idea_source = 'manual' OR idea_source = 'pulse' OR idea_source = 'series' OR
                        idea_source = 'followup' OR idea_source = 'repurpose'),
    idea            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(idea)),
    plan            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(plan)),
    script          TEXT,
    script_metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(script_metadata)),
    metadata        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    pipeline_state  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(pipeline_state)),
    published_url   TEXT CHECK (published_url IS NULL OR length(published_url) <= 500),
    published_at    TEXT,
    priority        INTEGER NOT NULL DEFAULT 0,
    retry_count     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at      TEXT,
    -- acog-batch: spool bookkeeping.  ticket is the file name of the episode's
    -- ticket; location the spool folder it belongs in (a stage, or published,
    -- failed, held); stage the pipeline stage it is at (or failed/held at).
    ticket          TEXT NOT NULL UNIQUE,
    location        TEXT NOT NULL,
    stage           TEXT NOT NULL,
    -- acog-batch: a human gate ('script_review' or 'review') awaiting a decision.
    gate_pending    TEXT CHECK (gate_pending IS NULL OR gate_pending IN ('script_review', 'review')),
    -- acog-batch: why the ticket is in held/, and until when (NULL = until a human acts).
    hold_reason     TEXT,
    hold_until      TEXT,
    -- acog-batch: the last reviewer's notes, handed to providers on a re-run.
    review_notes    TEXT,
    -- acog-batch: duplicate detection and crash-safe ingest.
    idempotency_key TEXT,
    content_hash    TEXT NOT NULL,
    source_name     TEXT NOT NULL,
    ingest_done     INTEGER NOT NULL DEFAULT 0 CHECK (ingest_done IN (0, 1)),
    -- acog-batch: the state of src/state.c's table, the only thing that moves
    -- an episode: new (ingest not finished), queued, running, awaiting (a
    -- gate), held, failed, cancelled, published.
    state           TEXT NOT NULL DEFAULT 'new' CHECK (
                        state = 'new' OR state = 'queued' OR state = 'running' OR
                        state = 'awaiting' OR state = 'held' OR state = 'failed' OR
                        state = 'cancelled' OR state = 'published'),
    -- acog-batch: the kind of hold while held or cancelled: budget (daily
    -- budget spent), quota (a provider's daily quota), upload_limit (a
    -- platform's rolling upload cap), auth (re-authorisation needed), user
    -- (held by a person), cancelled, rejected (at a gate, without --to).
    hold_kind       TEXT CHECK (hold_kind IS NULL OR
                        hold_kind = 'budget' OR hold_kind = 'quota' OR hold_kind = 'upload_limit' OR
                        hold_kind = 'auth' OR hold_kind = 'user' OR hold_kind = 'cancelled' OR
                        hold_kind = 'rejected'),
    -- acog-batch: when the upload publishes (ISO-8601 UTC): the idea's publish_at or the
    -- channel cadence's next free slot, set at approval (schedule.c).  NULL = at once.
    scheduled_at    TEXT,
    -- acog-batch: an idea's series (numbered in order per channel) and the episode it follows up
    series          TEXT,
    series_number   INTEGER,
    follows_id      TEXT REFERENCES episodes(id) ON DELETE SET NULL
);
CREATE INDEX idx_episodes_scheduled ON episodes(channel_id, scheduled_at) WHERE scheduled_at IS NOT NULL;
CREATE INDEX idx_episodes_series ON episodes(channel_id, series, series_number) WHERE series IS NOT NULL;
-- idx_episodes_channel_id (channel_id) is left out: idx_episodes_channel_status, the same
-- with status after channel_id and the same WHERE, serves every lookup it would.
CREATE INDEX idx_episodes_status ON episodes(status) WHERE deleted_at IS NULL;
CREATE INDEX idx_episodes_channel_status ON episodes(channel_id, status) WHERE deleted_at IS NULL;
CREATE INDEX idx_episodes_created_at ON episodes(created_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX idx_episodes_pulse_event ON episodes(pulse_event_id) WHERE pulse_event_id IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX idx_episodes_priority ON episodes(priority DESC, created_at ASC)
    WHERE (status = 'idea' OR status = 'planning' OR status = 'scripting' OR status = 'script_review' OR
      status = 'audio' OR status = 'avatar' OR status = 'broll' OR status = 'assembly')
      AND deleted_at IS NULL;
CREATE UNIQUE INDEX idx_episodes_slug_per_channel ON episodes(channel_id, slug)
    WHERE deleted_at IS NULL AND slug IS NOT NULL;
-- acog-batch: the same idea twice never makes a second episode.
CREATE UNIQUE INDEX idx_episodes_idempotency ON episodes(channel_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND deleted_at IS NULL;
CREATE UNIQUE INDEX idx_episodes_content ON episodes(channel_id, content_hash) WHERE deleted_at IS NULL;
-- acog-batch: the scheduler and the hold releases look episodes up by state.
CREATE INDEX idx_episodes_state ON episodes(state);
-- acog-batch: flat cost as history grows: the pending-ingest lookup, the
-- scheduler's next job per channel, the next hold release, start-up
-- reconciliation of what changed since the last clean stop (the finished
-- episodes only: the others it takes by state; an index on updated_at of
-- every row would be written twice on every transition).
CREATE INDEX idx_episodes_ingest_pending ON episodes(ingest_done, source_name) WHERE ingest_done = 0;
CREATE INDEX idx_episodes_queue ON episodes(channel_id, priority DESC, created_at) WHERE state = 'queued';
CREATE INDEX idx_episodes_hold_until ON episodes(hold_until) WHERE state = 'held';
CREATE INDEX idx_episodes_finished_updated ON episodes(updated_at)
    WHERE state = 'failed' OR state = 'cancelled' OR state = 'published';

CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    episode_id      TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    stage           TEXT NOT NULL CHECK (
                        stage = 'planning' OR stage = 'scripting' OR stage = 'script_review' OR
                        stage = 'metadata' OR stage = 'audio' OR stage = 'avatar' OR
                        stage = 'broll' OR stage = 'assembly' OR stage = 'upload'),
    status          TEXT NOT NULL DEFAULT 'queued' CHECK (
                        status = 'queued' OR status = 'running' OR status = 'completed' OR
                        status = 'failed' OR status = 'cancelled'),
    celery_task_id  TEXT,   -- kept for schema parity; acog-batch has no Celery
    input_params    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(input_params)),
    result          TEXT CHECK (result IS NULL OR json_valid(result)),
    error_message   TEXT,
    started_at      TEXT,
    completed_at    TEXT,
    retry_count     INTEGER NOT NULL DEFAULT 0,
    max_retries     INTEGER NOT NULL DEFAULT 3,
    cost_usd        REAL,
    tokens_used     INTEGER,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- acog-batch: when a queued retry may run (the timerfd deadline survives restarts).
    next_attempt_at TEXT,
    -- acog-batch: which provider ran it, and an asynchronous provider's own job id,
    -- stored before polling so a restart resumes instead of submitting twice.
    provider        TEXT,
    provider_job_id TEXT,
    -- acog-batch: hash of the stage's inputs/provider/model/parameters, and
    -- whether the result was reused from an earlier identical run.
    input_hash      TEXT,
    cached          INTEGER NOT NULL DEFAULT 0 CHECK (cached IN (0, 1))
);
-- idx_jobs_episode_id (episode_id) is left out: idx_jobs_episode_stage (episode_id, stage)
-- serves every lookup it would, and one index less is one page less per job.
CREATE INDEX idx_jobs_status ON jobs(status) WHERE status IN ('queued', 'running');
CREATE INDEX idx_jobs_episode_stage ON jobs(episode_id, stage);
CREATE INDEX idx_jobs_celery_task ON jobs(celery_task_id) WHERE celery_task_id IS NOT NULL;
CREATE INDEX idx_jobs_created_at ON jobs(created_at DESC);
-- acog-batch: at most one unfinished job per episode.
CREATE UNIQUE INDEX idx_jobs_one_active ON jobs(episode_id) WHERE status IN ('queued', 'running');
CREATE INDEX idx_jobs_next_attempt ON jobs(next_attempt_at) WHERE status = 'queued';

CREATE TABLE assets (
    id              TEXT PRIMARY KEY,
    episode_id      TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    type            TEXT NOT NULL CHECK (type IN (
                        'script', 'audio', 'avatar_video', 'b_roll', 'assembled_video',
                        'thumbnail', 'plan', 'metadata')),
    name            TEXT CHECK (name IS NULL OR length(name) <= 255),
    uri             TEXT NOT NULL CHECK (length(uri) <= 1000),
    storage_bucket  TEXT,
    storage_key     TEXT,
    provider        TEXT,
    provider_job_id TEXT,
    metadata        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    mime_type       TEXT,
    file_size_bytes INTEGER,
    duration_ms     INTEGER,
    is_primary      INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1)),
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at      TEXT
);
CREATE INDEX idx_assets_episode_id ON assets(episode_id) WHERE deleted_at IS NULL;
CREATE INDEX idx_assets_episode_type ON assets(episode_id, type) WHERE deleted_at IS NULL;
CREATE INDEX idx_assets_type ON assets(type) WHERE deleted_at IS NULL;
CREATE INDEX idx_assets_provider ON assets(provider) WHERE deleted_at IS NULL;
CREATE INDEX idx_assets_created_at ON assets(created_at DESC) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX idx_assets_primary_unique ON assets(episode_id, type)
    WHERE is_primary = 1 AND deleted_at IS NULL;
-- acog-batch: one live row per file, so a re-run stage never doubles an asset.
CREATE UNIQUE INDEX idx_assets_live_uri ON assets(episode_id, uri) WHERE deleted_at IS NULL;

CREATE TABLE cost_entries (
    id              TEXT PRIMARY KEY,
    episode_id      TEXT REFERENCES episodes(id),
    channel_id      TEXT REFERENCES channels(id),
    provider        TEXT NOT NULL,
    operation_type  TEXT NOT NULL,
    cost_cents      INTEGER NOT NULL,
    currency        TEXT NOT NULL DEFAULT 'USD',
    units_consumed  REAL,
    unit_type       TEXT,
    provider_ref    TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- acog-batch: exact amount (cost_cents rounds sub-cent token prices away),
    -- and the job that paid it, so a replayed completion never adds a row twice.
    cost_usd        REAL NOT NULL DEFAULT 0,
    job_id          TEXT REFERENCES jobs(id)
);
CREATE INDEX idx_cost_entries_episode ON cost_entries(episode_id);
CREATE INDEX idx_cost_entries_channel ON cost_entries(channel_id);
CREATE INDEX idx_cost_entries_provider ON cost_entries(provider);
CREATE INDEX idx_cost_entries_created_at ON cost_entries(created_at DESC);
-- acog-batch: the day's spend of a channel (budget.c), read before every paid stage.
CREATE INDEX idx_cost_entries_channel_time ON cost_entries(channel_id, created_at);

CREATE TABLE episode_versions (
    id              TEXT PRIMARY KEY,
    episode_id      TEXT NOT NULL REFERENCES episodes(id),
    version_type    TEXT NOT NULL CHECK (version_type IN ('plan', 'script', 'metadata')),
    version_number  INTEGER NOT NULL,
    content         TEXT NOT NULL CHECK (json_valid(content)),
    changed_by      TEXT,
    change_reason   TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_episode_versions_episode ON episode_versions(episode_id);
CREATE UNIQUE INDEX idx_episode_versions_unique ON episode_versions(episode_id, version_type, version_number);

-- acog-batch: the durable provider-state store (stagedb.c).  A stage's
-- provider keeps what must survive a crash here (async job ids, an upload's
-- session URI and video id, done-marks), written before it waits on
-- anything.  Rows of a stage whose state_scope is "job" are cleared when the
-- stage is entered again; "episode" rows live as long as the episode.
CREATE TABLE provider_state (
    episode_id  TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    stage       TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (episode_id, stage, key)
);

-- acog-batch: channel-wide holds.  A stage of a channel that must not run
-- for now (its upload quota is spent, its token needs re-authorising, its
-- daily budget is spent): an episode of that channel reaching that stage is
-- held with the same kind and reason instead of starting.  stage '*' holds
-- every stage (kind budget: every paid stage).  until NULL = until a person
-- acts (`retry`, `auth`).
CREATE TABLE channel_holds (
    channel_id  TEXT NOT NULL REFERENCES channels(id),
    stage       TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('budget', 'quota', 'upload_limit', 'auth', 'user')),
    reason      TEXT NOT NULL,
    until       TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (channel_id, stage, kind)
);

-- acog-batch: the daemon's own marks.  'clean_stop' is the time of the last
-- clean stop (deleted at start-up): start-up reconciles only the episodes
-- unfinished or changed since then (spool.c).
CREATE TABLE daemon_marks (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);

-- acog-batch: every state transition writes a row (src/state.c): action is
-- the event (create, start, complete, hold, approve, ...), actor_type daemon,
-- user (a CLI command; actor_id the user) or decision_file (actor_id its
-- reviewer); old_values and new_values hold the state, stage and reason.
CREATE TABLE audit_logs (
    id              TEXT PRIMARY KEY,
    entity_type     TEXT NOT NULL,
    entity_id       TEXT NOT NULL,
    action          TEXT NOT NULL,
    actor_type      TEXT NOT NULL,
    actor_id        TEXT,
    old_values      TEXT CHECK (old_values IS NULL OR json_valid(old_values)),
    new_values      TEXT CHECK (new_values IS NULL OR json_valid(new_values)),
    ip_address      TEXT,
    user_agent      TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_audit_logs_entity ON audit_logs(entity_type, entity_id);
CREATE INDEX idx_audit_logs_created_at ON audit_logs(created_at DESC);
-- acog-batch: `show` reads an episode's history by entity_id alone.
CREATE INDEX idx_audit_logs_entity_id ON audit_logs(entity_id);
-- acog-batch: the audit log is append-only.
CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
BEGIN SELECT RAISE(ABORT, 'audit_logs is append-only'); END;
CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
BEGIN SELECT RAISE(ABORT, 'audit_logs is append-only'); END;

CREATE TABLE youtube_quota_usage (
    id              TEXT PRIMARY KEY,
    channel_id      TEXT NOT NULL REFERENCES channels(id),
    date            TEXT NOT NULL,          -- the Pacific day, YYYY-MM-DD
    units_used      INTEGER NOT NULL DEFAULT 0,
    daily_limit     INTEGER NOT NULL DEFAULT 10000,
    -- acog-batch: uploads have their own daily bucket since June 2026.
    bucket          TEXT NOT NULL DEFAULT 'default' CHECK (bucket IN ('default', 'upload')),
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE UNIQUE INDEX idx_youtube_quota_day ON youtube_quota_usage(channel_id, date, bucket);

-- updated_at maintenance (the seed's update_updated_at_column trigger).
-- acog-batch: episodes and jobs have no such trigger: every UPDATE of them
-- sets updated_at itself (test builds refuse one that does not, db.c), which
-- spares each stage transition a second update of the same rows.
CREATE TRIGGER update_channels_updated_at AFTER UPDATE ON channels
WHEN NEW.updated_at = OLD.updated_at
BEGIN UPDATE channels SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id; END;
CREATE TRIGGER update_assets_updated_at AFTER UPDATE ON assets
WHEN NEW.updated_at = OLD.updated_at
BEGIN UPDATE assets SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id; END;
CREATE TRIGGER update_pulse_events_updated_at AFTER UPDATE ON pulse_events
WHEN NEW.updated_at = OLD.updated_at
BEGIN UPDATE pulse_events SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id; END;
CREATE TRIGGER update_youtube_quota_updated_at AFTER UPDATE ON youtube_quota_usage
WHEN NEW.updated_at = OLD.updated_at
BEGIN UPDATE youtube_quota_usage SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id; END;
