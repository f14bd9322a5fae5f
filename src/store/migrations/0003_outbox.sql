-- The durable outbox: one row per outbound message that a worker sends to a payer, keyed by
-- the outbound message id (the bytes live there and are never rewritten, so every retransmit
-- is the same bytes with the same trace and control numbers). Same SQL on both backends.
--
-- state: queued -> sending -> answered | delivered (batch: handed over, answer later)
--        | refused | dead, or back to queued (rescheduled); dead -> queued by a person.
-- claims counts the leases taken; a worker's writes are conditional on (lease_owner, claims),
-- so a worker that lost its lease cannot overwrite the new owner's result.
-- retransmit = 1: the next send repeats bytes that may have reached the payer (an unknown
-- outcome, or a lease that expired mid-send): not before the retransmit floor.

CREATE TABLE outbox (
    id BIGINT PRIMARY KEY REFERENCES outbound_messages(id),
    request_id TEXT REFERENCES requests(id),
    payer TEXT NOT NULL,
    format TEXT NOT NULL,
    operation TEXT NOT NULL,
    payload_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    claims BIGINT NOT NULL DEFAULT 0,
    retransmit BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_error TEXT,
    last_attempt_at BIGINT,
    answered_at BIGINT,
    inbound_message_id BIGINT REFERENCES inbound_messages(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_request ON outbox (request_id);
