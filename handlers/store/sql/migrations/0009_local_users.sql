-- The local user pool (JitAI's 本地用户池): one row per person, whatever corps and userids they appear under.
-- identity names the person as the platform does: DingTalk 'unionId:<unionid>' (the same person in every org of
-- one developer account), WeCom 'userId:<corpid>:<userid>', or 'openUserId:<corpid>:<open_userid>' for a 代开发 /
-- suite tenant that sends it. A member is linked to its person on registration (every full sync, bulkRegister);
-- the link is kept when the member's userid changes, so the person stays who they were.
CREATE TABLE local_users (
    id          bigserial PRIMARY KEY,
    platform    text NOT NULL CHECK (platform IN ('wecom', 'dingtalk')),
    identity    text NOT NULL,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, identity)
);

ALTER TABLE members ADD COLUMN local_user bigint REFERENCES local_users (id) ON DELETE SET NULL;
CREATE INDEX members_local_user ON members (local_user) WHERE local_user IS NOT NULL;
