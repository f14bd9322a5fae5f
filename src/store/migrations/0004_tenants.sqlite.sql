ALTER TABLE requests ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX requests_tenant ON requests (tenant, created_at);
CREATE TABLE api_keys (
    id {ID},
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL UNIQUE,
    jwks_public_key TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant);
CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    client TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);
CREATE TABLE oauth_assertions (
    client TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client, jti)
);
CREATE TABLE audit_events (
    id {ID},
    at BIGINT NOT NULL,
    tenant TEXT,
    principal TEXT,
    role TEXT,
    action TEXT NOT NULL,
    resource_type TEXT,
    resource_id TEXT,
    outcome TEXT NOT NULL,
    http_status BIGINT,
    remote_addr TEXT,
    request_id TEXT
);
CREATE INDEX audit_events_resource ON audit_events (resource_id, at);
CREATE INDEX audit_events_tenant ON audit_events (tenant, at);
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
