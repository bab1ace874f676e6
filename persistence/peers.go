package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// UpsertPeer records a peer by node key, updating its address, and returns
// its id (used in receipts and sessions).
func (s *Store) UpsertPeer(ctx context.Context, nodeID [33]byte, address string) (int32, error) {
	var id int32
	err := s.pool.QueryRow(ctx, `
		INSERT INTO peers (node_id, address) VALUES ($1, $2)
		ON CONFLICT (node_id) DO UPDATE SET address = EXCLUDED.address
		RETURNING id`, nodeID[:], address).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("upsert peer: %w", translate(err))
	}
	return id, nil
}

// StartPeerSession records that a peer connected at t and returns the
// session id.
func (s *Store) StartPeerSession(ctx context.Context, peerID int32, t time.Time) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO peer_sessions (peer_id, connected_at) VALUES ($1, $2) RETURNING id`, peerID, t).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("start peer session: %w", translate(err))
	}
	return id, nil
}

// EndPeerSession records that a session ended at t, and why.
func (s *Store) EndPeerSession(ctx context.Context, sessionID int64, t time.Time, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE peer_sessions SET disconnected_at = $2, reason = $3 WHERE id = $1`, sessionID, t, reason)
	if err != nil {
		return fmt.Errorf("end peer session: %w", translate(err))
	}
	return nil
}

// CloseOpenSessions ends every session still open, at t (sessions left open by
// a crash). It returns how many it closed.
func (s *Store) CloseOpenSessions(ctx context.Context, t time.Time, reason string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE peer_sessions SET disconnected_at = greatest(connected_at, $1), reason = $2 WHERE disconnected_at IS NULL`, t, reason)
	if err != nil {
		return 0, fmt.Errorf("close open sessions: %w", translate(err))
	}
	return tag.RowsAffected(), nil
}

// PeerSession is one connection interval of a peer.
type PeerSession struct {
	PeerID         int32
	ConnectedAt    time.Time
	DisconnectedAt *time.Time // nil while connected
	Reason         string
}

// PeerSessions returns a peer's sessions that overlap [from, to), oldest first.
func (s *Store) PeerSessions(ctx context.Context, peerID int32, from, to time.Time) ([]PeerSession, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT peer_id, connected_at, disconnected_at, reason FROM peer_sessions
		WHERE peer_id = $1 AND connected_at < $3 AND (disconnected_at IS NULL OR disconnected_at >= $2)
		ORDER BY connected_at`, peerID, from, to)
	if err != nil {
		return nil, fmt.Errorf("read peer sessions: %w", translate(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PeerSession, error) {
		var p PeerSession
		err := row.Scan(&p.PeerID, &p.ConnectedAt, &p.DisconnectedAt, &p.Reason)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("read peer sessions: %w", translate(err))
	}
	return out, nil
}

// ChannelKeys are what validating a channel_update needs of its channel.
type ChannelKeys struct {
	SCID         uint64
	NodeID1      [33]byte
	NodeID2      [33]byte
	FundingSats  uint64
	FundingKnown bool
}

// LoadChannelKeys calls visit for every stored channel announcement.
func (s *Store) LoadChannelKeys(ctx context.Context, visit func(ChannelKeys) error) error {
	rows, err := s.pool.Query(ctx, `SELECT scid, node_id_1, node_id_2, funding_sats FROM channel_announcements`)
	if err != nil {
		return fmt.Errorf("load channel keys: %w", translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var k ChannelKeys
		var scid int64
		var n1, n2 []byte
		var funding *int64
		if err := rows.Scan(&scid, &n1, &n2, &funding); err != nil {
			return fmt.Errorf("load channel keys: %w", err)
		}
		k.SCID = uint64(scid)
		copy(k.NodeID1[:], n1)
		copy(k.NodeID2[:], n2)
		if funding != nil {
			k.FundingSats, k.FundingKnown = uint64(*funding), true
		}
		if err := visit(k); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load channel keys: %w", translate(err))
	}
	return nil
}

// NewestGossipTimestamp returns the highest gossip timestamp stored in channel
// updates and node announcements, or 0 when there is none. A downloader asks
// peers for gossip from a little before it when it reconnects.
func (s *Store) NewestGossipTimestamp(ctx context.Context) (uint32, error) {
	var ts int64
	err := s.pool.QueryRow(ctx, `SELECT greatest(
		coalesce((SELECT max(timestamp) FROM channel_updates), 0),
		coalesce((SELECT max(timestamp) FROM node_announcements), 0))`).Scan(&ts)
	if err != nil {
		return 0, fmt.Errorf("read newest gossip timestamp: %w", translate(err))
	}
	return uint32(ts), nil
}

// Counts are row counts of the gossip tables.
type Counts struct {
	ChannelAnnouncements int64
	ChannelUpdates       int64
	NodeAnnouncements    int64
	Peers                int64
}

// Counts returns exact row counts (cheap at mainnet scale: a few million rows).
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM channel_announcements),
		(SELECT count(*) FROM channel_updates),
		(SELECT count(*) FROM node_announcements),
		(SELECT count(*) FROM peers)`).Scan(&c.ChannelAnnouncements, &c.ChannelUpdates, &c.NodeAnnouncements, &c.Peers)
	if err != nil {
		return c, fmt.Errorf("count rows: %w", translate(err))
	}
	return c, nil
}
