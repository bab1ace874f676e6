-- lnsync schema, version 2: hourly pre-aggregates of receipts for the
-- reconciliation metrics.
--
-- The aggregator fills one closed hour at a time (an hour H is closed once
-- receipts up to H+2h have been written, because a message first sighted in H
-- collects receipts for one more hour). A message belongs to the hour of its
-- first sighting. Refilling an hour deletes and rewrites its rows in one
-- transaction, so the job is idempotent. The aggregates outlive raw receipts:
-- they are about 0.5M message rows and 2,400 peer rows per day at mainnet
-- rates and 100 peers.

-- Hours whose aggregates are complete.
CREATE TABLE receipt_agg_hours (
    hour     timestamptz PRIMARY KEY,  -- start of the hour, UTC
    messages integer NOT NULL,
    receipts bigint NOT NULL,
    done_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per message first sighted in the hour.
CREATE TABLE receipt_agg_messages (
    hour       timestamptz NOT NULL,
    msg_hash   bigint NOT NULL,
    first_seen timestamptz NOT NULL,   -- f(h), µs
    msg_type   smallint NOT NULL,
    size       integer NOT NULL,
    receipts   integer NOT NULL,       -- distinct peers within one hour of first_seen
    connected  integer NOT NULL,       -- peers connected at first_seen
    delay_q    real[] NOT NULL,        -- D_q(h) in seconds for q = 5, 25, 50, 75, 95%
    covered    integer[] NOT NULL,     -- connected peers that delivered by f+10s, 30s, 1m, 2m, 5m, 10m, 30m
    gossip_ts  bigint,                 -- BOLT 7 timestamp (cu, na); NULL when the message row is unknown
    scid       bigint,                 -- channel_update only
    direction  smallint,               -- channel_update only
    node_id    bytea,                  -- node_announcement only
    keepalive  boolean,                -- channel_update equal to its previous version but for the timestamp
    -- Serves: the messages of a range of hours (WHERE hour >= $1 AND hour < $2),
    -- and the refill of one hour.
    PRIMARY KEY (hour, msg_hash)
);

-- One row per peer and hour: sufficient statistics of relay ratio and lag
-- over the messages first sighted in the hour.
CREATE TABLE receipt_agg_peers (
    hour            timestamptz NOT NULL,
    peer_id         integer NOT NULL,
    delivered       integer NOT NULL,
    eligible        integer NOT NULL,   -- messages first sighted while connected
    relayed         integer NOT NULL,   -- of those, delivered
    first_responder integer NOT NULL,   -- delivered at the first sighting
    bytes           bigint NOT NULL,
    lag_hist        integer[] NOT NULL, -- reconcile.LagHistogram: bucket 0 < 1 ms, then 2^(1/8) steps
    PRIMARY KEY (hour, peer_id)
);
