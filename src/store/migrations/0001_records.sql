-- Tracked authorization records. Written once for both backends: {ID} is the
-- auto-increment key, {BLOB} the byte type; integers are 64-bit; times are Unix milliseconds;
-- dates are YYYY-MM-DD text (they sort as dates).

CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    submitter_reference TEXT NOT NULL,
    payer TEXT NOT NULL,
    service_type TEXT NOT NULL,
    urgency TEXT NOT NULL,
    estimated_cost_cents BIGINT NOT NULL,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    previous_id TEXT REFERENCES requests(id),
    original_id TEXT REFERENCES requests(id),
    link_kind TEXT,
    approval_step BIGINT,
    certification_number TEXT,
    start_date TEXT,
    end_date TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    submitted_at BIGINT,
    decided_at BIGINT
);
CREATE INDEX requests_reference ON requests (submitter_reference);
CREATE INDEX requests_status ON requests (status);
CREATE INDEX requests_created ON requests (created_at);

CREATE TABLE request_versions (
    request_id TEXT NOT NULL REFERENCES requests(id),
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, version)
);

CREATE TABLE outbound_messages (
    id {ID},
    request_id TEXT REFERENCES requests(id),
    format TEXT NOT NULL,
    partner TEXT NOT NULL,
    destination TEXT,
    interchange_control BIGINT,
    group_control BIGINT,
    transaction_control BIGINT,
    submitter_reference TEXT,
    trace_number TEXT,
    raw {BLOB} NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbound_interchange ON outbound_messages (interchange_control);
CREATE INDEX outbound_group ON outbound_messages (group_control);

CREATE TABLE inbound_messages (
    id {ID},
    content_hash TEXT NOT NULL UNIQUE,
    format TEXT NOT NULL,
    source TEXT,
    size BIGINT NOT NULL,
    state TEXT NOT NULL,
    items_total BIGINT,
    items_applied BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    completed_at BIGINT
);

-- The bytes apart from the progress row, so moving the progress never rewrites them.
CREATE TABLE inbound_raw (
    message_id BIGINT PRIMARY KEY REFERENCES inbound_messages(id),
    raw {BLOB} NOT NULL
);

CREATE TABLE inbound_items (
    message_id BIGINT NOT NULL REFERENCES inbound_messages(id),
    position BIGINT NOT NULL,
    kind TEXT NOT NULL,
    request_id TEXT REFERENCES requests(id),
    outcome TEXT NOT NULL,
    reference TEXT,
    detail TEXT,
    body TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, position)
);
CREATE INDEX inbound_items_outcome ON inbound_items (outcome);

CREATE TABLE decisions (
    id {ID},
    key TEXT NOT NULL UNIQUE,
    request_id TEXT NOT NULL REFERENCES requests(id),
    inbound_message_id BIGINT,
    inbound_position BIGINT,
    status TEXT NOT NULL,
    action TEXT,
    certification_number TEXT,
    reason TEXT,
    start_date TEXT,
    end_date TEXT,
    body TEXT NOT NULL,
    decided_at BIGINT NOT NULL
);
CREATE INDEX decisions_request ON decisions (request_id);

CREATE TABLE line_decisions (
    decision_key TEXT NOT NULL REFERENCES decisions(key),
    request_id TEXT NOT NULL REFERENCES requests(id),
    line BIGINT NOT NULL,
    status TEXT NOT NULL,
    action TEXT,
    procedure_code TEXT,
    unit TEXT,
    authorized_units BIGINT,
    start_date TEXT,
    end_date TEXT,
    certification_number TEXT,
    PRIMARY KEY (decision_key, line)
);
CREATE INDEX line_decisions_request ON line_decisions (request_id);

CREATE TABLE events (
    id {ID},
    request_id TEXT REFERENCES requests(id),
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    reason TEXT,
    detail TEXT
);
CREATE INDEX events_request ON events (request_id);
CREATE INDEX events_at ON events (at);

CREATE TABLE service_events (
    id {ID},
    request_id TEXT NOT NULL REFERENCES requests(id),
    line BIGINT,
    procedure_code TEXT NOT NULL,
    units BIGINT NOT NULL,
    service_date TEXT NOT NULL,
    provider TEXT,
    state TEXT NOT NULL,
    flag TEXT,
    corrects_id BIGINT REFERENCES service_events(id),
    actor TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    voided_at BIGINT,
    void_reason TEXT
);
CREATE INDEX service_events_request ON service_events (request_id);

CREATE TABLE alerts (
    id {ID},
    request_id TEXT REFERENCES requests(id),
    kind TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    message TEXT NOT NULL,
    due TEXT,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT
);

CREATE TABLE control_numbers (
    partner TEXT NOT NULL,
    kind TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (partner, kind)
);

CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE actors (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
