-- corpsync schema, version 1. Ids from the platforms are text; unknown is NULL, never ''.

-- One row per corp corpsync serves: configured corps (name = app-dir name) and suite tenants that
-- were authorized at run time (name = '<auth>/<corpid>').
CREATE TABLE corps (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    platform        text NOT NULL CHECK (platform IN ('wecom', 'dingtalk')),
    type            text NOT NULL,
    corp_id         text NOT NULL,
    auth_name       text,
    title           text,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    disabled_at     timestamptz,
    root_dept_id    text,
    sync_requested_at timestamptz,           -- drift / on-demand request not yet served
    sync_request_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE departments (
    corp        bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    dept_id     text NOT NULL,
    parent_id   text,
    name        text,
    name_en     text,
    "order"     bigint,
    leaders     text[],
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (corp, dept_id)
);
CREATE INDEX departments_parent ON departments (corp, parent_id);

-- id is the member's local identity: it survives a userid rename (WeCom NewUserID) and a return.
CREATE TABLE members (
    id              bigserial PRIMARY KEY,
    corp            bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    user_id         text NOT NULL,
    union_id        text,
    open_user_id    text,
    name            text,
    alias           text,
    position        text,
    mobile          text,
    email           text,
    biz_mail        text,
    telephone       text,
    gender          smallint,
    avatar          text,
    job_number      text,
    work_place      text,
    hired_date      bigint,
    direct_leaders  text[],
    platform_status smallint,
    extattr         jsonb,
    main_dept_id    text,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'offline')),
    -- who took the member offline: 'platform' (left / removed upstream) or 'operator' (offlineMember)
    offline_reason  text CHECK (offline_reason IN ('platform', 'operator')),
    offline_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (corp, user_id)
);
CREATE INDEX members_status ON members (corp, status);
CREATE INDEX members_union ON members (corp, union_id) WHERE union_id IS NOT NULL;
CREATE INDEX members_updated ON members (corp, updated_at);

-- A member's departments; dept_id is not a foreign key: events may name a department before it exists.
CREATE TABLE member_departments (
    corp        bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    member      bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    dept_id     text NOT NULL,
    is_leader   boolean,
    "order"     bigint,
    PRIMARY KEY (member, dept_id)
);
CREATE INDEX member_departments_dept ON member_departments (corp, dept_id);

CREATE TABLE tags (
    corp        bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    tag_id      text NOT NULL,
    name        text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (corp, tag_id)
);

CREATE TABLE tag_members (
    corp        bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    tag_id      text NOT NULL,
    member      bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    PRIMARY KEY (corp, tag_id, member)
);

CREATE TABLE tag_departments (
    corp        bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    tag_id      text NOT NULL,
    dept_id     text NOT NULL,
    PRIMARY KEY (corp, tag_id, dept_id)
);

-- Roles: DingTalk roles (labels) from the platform, and local roles set through setUserRole.
CREATE TABLE roles (
    corp        bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    role_id     text NOT NULL,
    name        text,
    group_name  text,
    source      text NOT NULL DEFAULT 'platform' CHECK (source IN ('platform', 'local')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (corp, role_id)
);

CREATE TABLE role_members (
    corp        bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    role_id     text NOT NULL,
    member      bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (corp, role_id, member)
);

CREATE TABLE admins (
    corp        bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    member      bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    level       smallint,
    source      text NOT NULL DEFAULT 'platform' CHECK (source IN ('platform', 'local')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (corp, member)
);

CREATE TABLE signatures (
    corp        bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    member      bigint NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    signature   text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (corp, member)
);

-- Every verified callback, committed before it is answered. stream = the ordering key
-- (a corp's name, or a suite auth's name for instruction events); one stream is applied in id order.
CREATE TABLE inbox (
    id              bigserial PRIMARY KEY,
    stream          text NOT NULL,
    platform        text NOT NULL,
    route           text NOT NULL,                  -- 'wecom' | 'wecom-suite' | 'wecom-suite-data' | 'dingtalk' | 'dingtalk-failed'
    corp            bigint REFERENCES corps (id) ON DELETE SET NULL,
    dedupe_key      text NOT NULL,
    event_type      text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    query           jsonb NOT NULL,                 -- the raw query string parameters
    body            text NOT NULL,                  -- the raw request body
    plaintext       text NOT NULL,                  -- the decrypted message
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'done', 'ignored', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    applied_at      timestamptz,
    UNIQUE (stream, dedupe_key)
);
CREATE INDEX inbox_pending ON inbox (stream, id) WHERE status = 'pending';
CREATE INDEX inbox_received ON inbox (received_at);

-- One row per stream being applied; a worker locks it (FOR UPDATE SKIP LOCKED) to own the stream.
CREATE TABLE inbox_streams (
    stream      text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_runs (
    id              bigserial PRIMARY KEY,
    corp            bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    trigger         text NOT NULL,                  -- 'startup' | 'schedule' | 'manual' | 'api' | 'drift' | 'first'
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'succeeded', 'quarantined', 'failed')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    counts          jsonb NOT NULL DEFAULT '{}'::jsonb,
    api_calls       integer NOT NULL DEFAULT 0,
    error           text,
    held            jsonb,                          -- removals held by the deletion guard
    confirmed_at    timestamptz                     -- held removals applied by --allow-deletes
);
CREATE INDEX sync_runs_corp ON sync_runs (corp, started_at DESC);

CREATE TABLE change_log (
    id          bigserial PRIMARY KEY,
    corp        bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    entity      text NOT NULL,                      -- 'department' | 'member' | 'tag' | 'role' | 'admin' | ...
    entity_id   text NOT NULL,
    op          text NOT NULL,                      -- 'create' | 'update' | 'offline' | 'reactivate' | 'delete' | 'rename' | ...
    fields      text[],
    source      text NOT NULL CHECK (source IN ('event', 'full_sync', 'api')),
    inbox_id    bigint,
    sync_run_id bigint
);
CREATE INDEX change_log_corp ON change_log (corp, id);

-- Platform credentials shared by every process: access tokens, suite tickets, auth codes.
CREATE TABLE credentials (
    key         text PRIMARY KEY,                   -- e.g. 'wecom:token:<corpid>:<secret fingerprint>'
    value       text NOT NULL,
    expires_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Suite tenants: one row per (auth, authorized corpid).
CREATE TABLE suite_tenants (
    auth_name       text NOT NULL,
    corp_id         text NOT NULL,
    permanent_code  text,
    auth_code       text,                           -- pending exchange (create_auth / reset_permanent_code)
    auth_code_at    timestamptz,
    agent_id        text,
    auth_info       jsonb,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (auth_name, corp_id)
);

-- Liveness of receiver processes, for gap detection (was the receiver down too long?).
CREATE TABLE heartbeats (
    process     text PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    beat_at     timestamptz NOT NULL DEFAULT now()
);
