-- pocketscan client store, schema version 1.
-- Every sensitive value is sealed (XChaCha20-Poly1305 under the store key, label as AD);
-- lookup columns hold keyed HMACs, never account ids, names or message ids in clear.
CREATE TABLE version (version INTEGER NOT NULL);
CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);            -- KDF salt/limits, wrapped key
CREATE TABLE secrets (k BLOB PRIMARY KEY, kind TEXT NOT NULL, v BLOB NOT NULL);  -- identity, prekeys, settings
CREATE TABLE sessions (peer BLOB PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE contacts (peer BLOB PRIMARY KEY, name BLOB, seq INTEGER NOT NULL, v BLOB NOT NULL);
CREATE INDEX contacts_name ON contacts (name);
CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, mid BLOB NOT NULL UNIQUE, peer BLOB NOT NULL,
                       v BLOB NOT NULL);
CREATE INDEX messages_peer ON messages (peer, seq);
CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, eid BLOB NOT NULL UNIQUE, v BLOB NOT NULL);
CREATE TABLE seen (seq INTEGER PRIMARY KEY AUTOINCREMENT, iid BLOB NOT NULL UNIQUE);
