-- Rows that belong to a member (memberships, tag and role members, admins, signatures) check one foreign key, their
-- member's: a corp's deletion still reaches them through members (ON DELETE CASCADE), and the corp key never checked
-- that a row's corp is its member's. Each check was a lookup of the corps row per inserted row (bench/README.md,
-- tenants).
ALTER TABLE member_departments DROP CONSTRAINT member_departments_corp_fkey;
ALTER TABLE tag_members DROP CONSTRAINT tag_members_corp_fkey;
ALTER TABLE role_members DROP CONSTRAINT role_members_corp_fkey;
ALTER TABLE admins DROP CONSTRAINT admins_corp_fkey;
ALTER TABLE signatures DROP CONSTRAINT signatures_corp_fkey;
