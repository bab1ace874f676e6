-- lnsync schema, version 1.
--
-- Conventions:
--  * scid is the BOLT 7 short channel id stored as bigint with its bits
--    unchanged (block heights below 2^23 keep it positive, so numeric order is
--    scid order).
--  * seen is when lnsync stored a message (for live gossip: the writer's
--    commit clock, strictly ordered across batches; for imported files: the
--    file's receive time). Deltas select by seen; gossip timestamps only order
--    versions of the same channel direction or node.
--  * signed holds the complete wire message, type included, exactly as
--    received: the signature covers every byte, including unknown TLVs.
--  * u32/u64 protocol fields are stored in bigint; u16 in integer.

-- Peers lnsync has connected to or imported from.
CREATE TABLE peers (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node_id    bytea NOT NULL UNIQUE CHECK (length(node_id) = 33), -- upsert by key at connect
    address    text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now()
);

-- One row per connection interval of a peer (uptime, flap count).
CREATE TABLE peer_sessions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    peer_id         integer NOT NULL REFERENCES peers (id),
    connected_at    timestamptz NOT NULL,
    disconnected_at timestamptz,            -- NULL while connected
    reason          text NOT NULL DEFAULT ''
);
-- Serves: a peer's sessions overlapping a window, newest first
-- (WHERE peer_id = $1 AND connected_at < $to ORDER BY connected_at DESC).
CREATE INDEX peer_sessions_peer_connected ON peer_sessions (peer_id, connected_at DESC);

CREATE TABLE channel_announcements (
    scid         bigint PRIMARY KEY,       -- lookup by channel; ON CONFLICT target
    node_id_1    bytea NOT NULL CHECK (length(node_id_1) = 33),
    node_id_2    bytea NOT NULL CHECK (length(node_id_2) = 33),
    features     bytea NOT NULL,
    funding_sats bigint,                   -- NULL until checked on chain
    signed       bytea NOT NULL,
    seen         timestamptz NOT NULL,     -- first stored; never moved by later copies
    id           bigint GENERATED ALWAYS AS IDENTITY UNIQUE -- tail: WHERE id > $last ORDER BY id
);

CREATE TABLE channel_updates (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- tail: WHERE id > $last ORDER BY id
    scid                        bigint NOT NULL,
    direction                   smallint NOT NULL CHECK (direction IN (0, 1)),
    timestamp                   bigint NOT NULL,
    message_flags               smallint NOT NULL,
    channel_flags               smallint NOT NULL,
    cltv_expiry_delta           integer NOT NULL,
    htlc_minimum_msat           bigint NOT NULL,
    fee_base_msat               bigint NOT NULL,
    fee_proportional_millionths bigint NOT NULL,
    htlc_maximum_msat           bigint NOT NULL, -- 0 when message_flags bit 0 is clear
    signed                      bytea NOT NULL,
    seen                        timestamptz NOT NULL,
    -- One row per version of a channel direction (a replayed message is a no-op).
    -- Serves: the newest version per direction as of a time
    -- (DISTINCT ON (scid, direction) ... ORDER BY scid, direction, timestamp DESC),
    -- and retention's "keep the newest before the cut-off".
    CONSTRAINT channel_updates_version UNIQUE (scid, direction, timestamp)
);
-- Serves: everything stored in a window (WHERE seen >= $L AND seen < $C), and
-- retention's scan of rows older than the cut-off.
CREATE INDEX channel_updates_seen ON channel_updates (seen);
-- channel_updates only grows between prunes; vacuum it often enough that index-only
-- scans keep working (the default insert threshold is 20% of the table).
ALTER TABLE channel_updates SET (autovacuum_vacuum_insert_scale_factor = 0.005);

CREATE TABLE node_announcements (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- tail: WHERE id > $last ORDER BY id
    node_id   bytea NOT NULL CHECK (length(node_id) = 33),
    timestamp bigint NOT NULL,
    features  bytea NOT NULL,
    addresses bytea NOT NULL,   -- the message's address descriptors, as signed
    alias     bytea NOT NULL,
    rgb       bytea NOT NULL,
    signed    bytea NOT NULL,
    seen      timestamptz NOT NULL,
    -- One row per version of a node. Serves: newest version per node as of a time
    -- (DISTINCT ON (node_id) ... ORDER BY node_id, timestamp DESC) and retention.
    CONSTRAINT node_announcements_version UNIQUE (node_id, timestamp)
);
-- Serves: node announcements stored in a window (WHERE seen >= $L AND seen < $C).
CREATE INDEX node_announcements_seen ON node_announcements (seen);

-- Which peer delivered which message when: the first delivery of each message
-- by each peer. Partitioned by day of received_at so retention drops whole
-- partitions; partitions are created by the writer before it inserts.
CREATE TABLE receipts (
    received_at timestamptz NOT NULL, -- microsecond receive time at lnsync
    peer_id     integer NOT NULL,
    msg_hash    bigint NOT NULL,      -- first 8 bytes of sha256(wire message), big-endian
    msg_type    smallint NOT NULL,    -- 256, 257 or 258
    size        integer NOT NULL      -- wire bytes incl. type
) PARTITION BY RANGE (received_at);
-- Serves: every receipt in a window (WHERE received_at >= $from AND received_at < $to);
-- rows arrive in time order, so a BRIN index is tiny and exact enough.
CREATE INDEX receipts_received_at ON receipts USING brin (received_at);
-- Serves: deliveries of one message across peers (WHERE msg_hash = $1), used by
-- per-message propagation queries.
CREATE INDEX receipts_msg_hash ON receipts (msg_hash);

-- The writer's clock: seen values of live batches never go backwards, so a
-- reader holding a consistent cut at time T sees every row with seen < T.
CREATE TABLE ingest_clock (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seen timestamptz NOT NULL
);
INSERT INTO ingest_clock (last_seen) VALUES ('1970-01-01 00:00:00+00');

-- Batches the writer committed, so a batch retried after a connection broke
-- during COMMIT is recognised and not applied twice. Pruned after a day.
CREATE TABLE ingest_batches (
    id           bigint PRIMARY KEY,  -- random per batch; the retry's duplicate check
    committed_at timestamptz NOT NULL DEFAULT now()
);
