-- The local user pool (JitAI's 本地用户池): one row per person, whatever corps and userids they appear under.
-- identity names the person as the platform does: DingTalk 'unionId:<unionid>' (the same person in every org of
-- one developer account), WeCom 'userId:<corpid>:<userid>', or 'openUserId:<corpid>:<open_userid>' for a 代开发 /
-- suite tenant that sends it. A member is linked to its person when it is registered (every full sync,
-- bulkRegister, its creation by a callback); the link stays when its userid changes, and an identity made of the
-- userid follows the rename.
CREATE TABLE local_users (
    id          bigserial PRIMARY KEY,
    platform    text NOT NULL CHECK (platform IN ('wecom', 'dingtalk')),
    identity    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, identity)
);

ALTER TABLE members ADD COLUMN local_user bigint REFERENCES local_users (id) ON DELETE SET NULL;
-- Registration looks only at members not linked yet: after the first sync, none, found without a scan.
CREATE INDEX members_unlinked ON members (corp) WHERE local_user IS NULL;

-- A member's identity, from its corp (platform, type, suite auth, corpid) and its ids: DingTalk unionid; WeCom
-- open_userid for a 代开发 / suite tenant that has it; else the userid under the corpid.
CREATE FUNCTION member_identity(platform text, corp_type text, auth_name text, corp_id text,
                                user_id text, union_id text, open_user_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN platform = 'dingtalk' AND union_id IS NOT NULL THEN 'unionId:' || union_id
        WHEN platform = 'wecom' AND (corp_type = 'corps.QywxProxyType' OR auth_name IS NOT NULL)
             AND open_user_id IS NOT NULL THEN 'openUserId:' || corp_id || ':' || open_user_id
        ELSE 'userId:' || corp_id || ':' || user_id
    END
$$;
