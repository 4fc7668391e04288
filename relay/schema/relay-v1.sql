-- pocketscan relay store, schema version 1 (SQLite, WAL). Envelopes and blobs are opaque bytes.
CREATE TABLE version (version INTEGER NOT NULL);
INSERT INTO version (version) VALUES (1);

CREATE TABLE messages (
    mid       INTEGER PRIMARY KEY AUTOINCREMENT,  -- server-assigned id, grows in commit order
    recipient TEXT    NOT NULL,
    sender    TEXT    NOT NULL,
    ts        REAL    NOT NULL,
    expires   REAL    NOT NULL,
    envelope  BLOB    NOT NULL
);
CREATE INDEX messages_by_recipient ON messages (recipient, mid);
CREATE INDEX messages_by_expiry ON messages (expires);

-- Idempotency keys: a retried send with the same (sender, cid) returns the first mid. At delivery
-- (the recipient's ack) the recipient is erased ('') and the key expires Limits.delivered_id_ttl later.
CREATE TABLE sent_ids (
    sender    TEXT NOT NULL,
    cid       BLOB NOT NULL,
    mid       INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    ts        REAL NOT NULL,
    expires   REAL NOT NULL,
    PRIMARY KEY (sender, cid)
) WITHOUT ROWID;
CREATE INDEX sent_ids_by_expiry ON sent_ids (expires);
CREATE INDEX IF NOT EXISTS sent_ids_by_mid ON sent_ids (mid);

CREATE TABLE bundles (
    account TEXT PRIMARY KEY,
    bundle  BLOB NOT NULL,
    updated REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE one_time_prekeys (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    key     BLOB NOT NULL
);
CREATE INDEX one_time_prekeys_by_account ON one_time_prekeys (account, seq);

CREATE TABLE blobs (
    blob_id  TEXT PRIMARY KEY,
    owner    TEXT    NOT NULL,
    size     INTEGER NOT NULL,
    chunks   INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    created  REAL    NOT NULL,
    expires  REAL                -- NULL while it is the current snapshot
) WITHOUT ROWID;
CREATE INDEX blobs_by_owner ON blobs (owner, complete);

CREATE TABLE blob_chunks (
    blob_id TEXT    NOT NULL,
    idx     INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    PRIMARY KEY (blob_id, idx)
) WITHOUT ROWID;

CREATE TABLE snapshots (
    version   INTEGER PRIMARY KEY,
    blob_id   TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    sha256    BLOB    NOT NULL,
    publisher TEXT    NOT NULL,
    published REAL    NOT NULL
);
