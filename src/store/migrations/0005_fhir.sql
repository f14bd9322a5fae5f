-- The FHIR PAS endpoint (/fhir): the request Bundles as received, the records answered pended
-- to a FHIR caller (their later decisions are notified), backport Subscriptions per tenant, and
-- the durable notification queue. Same SQL on both backends.

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

-- Notifications to send, durable: queued -> delivered, or dead after the attempt budget.
-- One row per (subscription, event); the content is built when sent (full-resource: the
-- record's current PAS Response Bundle). lease_until: a sender's claim on the row.
CREATE TABLE fhir_notifications (
    id {ID},
    subscription_id TEXT NOT NULL REFERENCES fhir_subscriptions(id),
    event_id BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    event_number BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX fhir_notifications_due ON fhir_notifications (state, next_attempt_at);

-- How far the notifier has read the events log.
CREATE TABLE fhir_cursor (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
