-- lnsync schema, version 3: where rows came from, and messages waiting for
-- their channel.

-- Rows stored by `lnsync import` rather than received from a live peer.
-- Retention keeps them for retention.imported (by default for good) instead
-- of retention.history. Adding a column with a constant default rewrites
-- nothing.
ALTER TABLE channel_announcements ADD COLUMN imported boolean NOT NULL DEFAULT false;
ALTER TABLE channel_updates ADD COLUMN imported boolean NOT NULL DEFAULT false;
ALTER TABLE node_announcements ADD COLUMN imported boolean NOT NULL DEFAULT false;

-- Channel updates whose channel announcement has not been stored yet, and node
-- announcements of nodes without a stored channel, from imports: kept
-- unverified (an update's signature can only be checked with the keys of its
-- announcement), never served, and validated like any message once the
-- announcement is accepted, then deleted from here.
CREATE TABLE waiting_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scid        bigint,                  -- a channel_update: the channel it waits for
    node_id     bytea CHECK (length(node_id) = 33), -- a node_announcement: the node
    signed      bytea NOT NULL,          -- the wire message, type included
    received_at timestamptz NOT NULL,    -- the import clock when it was read
    imported    boolean NOT NULL,
    CHECK ((scid IS NULL) <> (node_id IS NULL)),
    -- A message read twice waits once.
    CONSTRAINT waiting_messages_once UNIQUE (signed)
);
-- Serves: what waits for an accepted announcement (WHERE scid = $1 OR node_id = ANY($2)).
CREATE INDEX waiting_messages_scid ON waiting_messages (scid) WHERE scid IS NOT NULL;
CREATE INDEX waiting_messages_node ON waiting_messages (node_id) WHERE node_id IS NOT NULL;
