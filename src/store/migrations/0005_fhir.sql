-- The FHIR PAS endpoint (/fhir): the request Bundles as received, the records answered pended
-- to a FHIR caller (their later decisions are notified through the notification queue of
-- migration 0006), and backport Subscriptions per tenant. Same SQL on both backends.

-- The PAS request Bundle a record came from, per record version, so a response echoes its
-- identifiers, item sequences and fullUrls. orgs: '|'-separated organization identifiers of the
-- request (requester NPI and identifiers, ISA06), matched against Subscription filters.
CREATE TABLE fhir_request_bundles (
    request_id TEXT NOT NULL REFERENCES requests(id),
    version BIGINT NOT NULL,
    tenant TEXT NOT NULL,
    bundle TEXT NOT NULL,
    orgs TEXT NOT NULL,
    revises_id TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, version)
);
CREATE INDEX fhir_request_bundles_tenant ON fhir_request_bundles (tenant);

-- Records whose $submit was answered A4 (pended, or the payer was slow): their later status
-- changes are sent to the matching Subscriptions. after_event: the last event id when it was
-- answered (what the caller already knew).
CREATE TABLE fhir_pended (
    request_id TEXT PRIMARY KEY REFERENCES requests(id),
    tenant TEXT NOT NULL,
    answered_at BIGINT NOT NULL,
    after_event BIGINT NOT NULL
);

-- R4 Subscriptions Backport (rest-hook, full-resource), one row per Subscription.
-- status: requested | active | error | off. event_count: notifications numbered so far.
CREATE TABLE fhir_subscriptions (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    filter TEXT NOT NULL,
    resource TEXT NOT NULL,
    event_count BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX fhir_subscriptions_tenant ON fhir_subscriptions (tenant);
