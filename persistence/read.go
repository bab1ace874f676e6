package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cursor marks how far a reader has read each table: the highest id seen.
// Batches commit in id order (they hold the ingest lock while inserting), so
// reading "id > cursor" never skips a row that commits later.
type Cursor struct {
	Announcements int64
	Updates       int64
	Nodes         int64
}

// StoredAnnouncement is a channel_announcements row without its signed bytes.
type StoredAnnouncement struct {
	ID           int64
	SCID         uint64
	NodeID1      [33]byte
	NodeID2      [33]byte
	Features     []byte
	FundingSats  uint64
	FundingKnown bool
	Seen         time.Time
	Imported     bool
}

// StoredUpdate is a channel_updates row without its signed bytes.
type StoredUpdate struct {
	ID                        int64
	SCID                      uint64
	Direction                 uint8
	Timestamp                 uint32
	MessageFlags              uint8
	ChannelFlags              uint8
	CLTVExpiryDelta           uint16
	HTLCMinimumMsat           uint64
	FeeBaseMsat               uint32
	FeeProportionalMillionths uint32
	HTLCMaximumMsat           uint64
	Seen                      time.Time
	Imported                  bool
}

// StoredNode is a node_announcements row without its signed bytes.
type StoredNode struct {
	ID        int64
	NodeID    [33]byte
	Timestamp uint32
	Features  []byte
	Addresses []byte
	Seen      time.Time
	Imported  bool
}

// Visitor receives rows from ReadSince in id order per table: announcements
// first, then updates, then node announcements. A non-nil error stops the read.
type Visitor struct {
	Announcement func(*StoredAnnouncement) error
	Update       func(*StoredUpdate) error
	Node         func(*StoredNode) error
}

// Seal advances the ingest clock to the database's current time, waiting for
// any batch in flight to commit first, and returns the new clock. After Seal
// returns T, every row with seen < T has committed: later live batches are
// stamped at or after T.
func (s *Store) Seal(ctx context.Context) (time.Time, error) {
	var clock time.Time
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(ingestLockKey)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `UPDATE ingest_clock SET last_seen = greatest(last_seen, clock_timestamp()) RETURNING last_seen`).Scan(&clock)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("seal ingest clock: %w", translate(err))
	}
	return clock, nil
}

// ReadSince streams every row stored after cursor, from one consistent
// snapshot, and returns the advanced cursor and the snapshot's ingest clock:
// the rows read together with those read before cover everything with
// seen < clock (for live ingestion; imported history may add older rows later).
func (s *Store) ReadSince(ctx context.Context, cur Cursor, v Visitor) (Cursor, time.Time, error) {
	var clock time.Time
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT last_seen FROM ingest_clock`).Scan(&clock); err != nil {
			return fmt.Errorf("read clock: %w", err)
		}
		var err error
		if cur.Announcements, err = readAnnouncements(ctx, tx, cur.Announcements, v.Announcement); err != nil {
			return err
		}
		if cur.Updates, err = readUpdates(ctx, tx, cur.Updates, v.Update); err != nil {
			return err
		}
		cur.Nodes, err = readNodes(ctx, tx, cur.Nodes, v.Node)
		return err
	})
	if err != nil {
		return cur, time.Time{}, fmt.Errorf("read since cursor: %w", translate(err))
	}
	return cur, clock, nil
}

func readAnnouncements(ctx context.Context, tx pgx.Tx, after int64, visit func(*StoredAnnouncement) error) (int64, error) {
	rows, err := tx.Query(ctx, `SELECT id, scid, node_id_1, node_id_2, features, funding_sats, seen, imported
		FROM channel_announcements WHERE id > $1 ORDER BY id`, after)
	if err != nil {
		return after, fmt.Errorf("read channel announcements: %w", err)
	}
	defer rows.Close()
	var a StoredAnnouncement
	var scid int64
	var n1, n2 []byte
	var funding *int64
	for rows.Next() {
		if err := rows.Scan(&a.ID, &scid, &n1, &n2, &a.Features, &funding, &a.Seen, &a.Imported); err != nil {
			return after, fmt.Errorf("read channel announcements: %w", err)
		}
		a.SCID = uint64(scid)
		copy(a.NodeID1[:], n1)
		copy(a.NodeID2[:], n2)
		a.FundingKnown = funding != nil
		a.FundingSats = 0
		if funding != nil {
			a.FundingSats = uint64(*funding)
		}
		after = a.ID
		if visit != nil {
			row := a
			row.Features = append([]byte(nil), a.Features...)
			if err := visit(&row); err != nil {
				return after, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return after, fmt.Errorf("read channel announcements: %w", err)
	}
	return after, nil
}

func readUpdates(ctx context.Context, tx pgx.Tx, after int64, visit func(*StoredUpdate) error) (int64, error) {
	rows, err := tx.Query(ctx, `SELECT id, scid, direction, timestamp, message_flags, channel_flags,
			cltv_expiry_delta, htlc_minimum_msat, fee_base_msat, fee_proportional_millionths, htlc_maximum_msat, seen, imported
		FROM channel_updates WHERE id > $1 ORDER BY id`, after)
	if err != nil {
		return after, fmt.Errorf("read channel updates: %w", err)
	}
	defer rows.Close()
	var (
		u                                  StoredUpdate
		scid, ts, htlcMin, base, ppm, hmax int64
		dir, mflags, cflags                int16
		cltv                               int32
	)
	for rows.Next() {
		if err := rows.Scan(&u.ID, &scid, &dir, &ts, &mflags, &cflags, &cltv, &htlcMin, &base, &ppm, &hmax, &u.Seen, &u.Imported); err != nil {
			return after, fmt.Errorf("read channel updates: %w", err)
		}
		u.SCID, u.Direction, u.Timestamp = uint64(scid), uint8(dir), uint32(ts)
		u.MessageFlags, u.ChannelFlags, u.CLTVExpiryDelta = uint8(mflags), uint8(cflags), uint16(cltv)
		u.HTLCMinimumMsat, u.FeeBaseMsat, u.FeeProportionalMillionths, u.HTLCMaximumMsat = uint64(htlcMin), uint32(base), uint32(ppm), uint64(hmax)
		after = u.ID
		if visit != nil {
			row := u
			if err := visit(&row); err != nil {
				return after, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return after, fmt.Errorf("read channel updates: %w", err)
	}
	return after, nil
}

func readNodes(ctx context.Context, tx pgx.Tx, after int64, visit func(*StoredNode) error) (int64, error) {
	rows, err := tx.Query(ctx, `SELECT id, node_id, timestamp, features, addresses, seen, imported
		FROM node_announcements WHERE id > $1 ORDER BY id`, after)
	if err != nil {
		return after, fmt.Errorf("read node announcements: %w", err)
	}
	defer rows.Close()
	var n StoredNode
	var id []byte
	var ts int64
	for rows.Next() {
		if err := rows.Scan(&n.ID, &id, &ts, &n.Features, &n.Addresses, &n.Seen, &n.Imported); err != nil {
			return after, fmt.Errorf("read node announcements: %w", err)
		}
		copy(n.NodeID[:], id)
		n.Timestamp = uint32(ts)
		after = n.ID
		if visit != nil {
			row := n
			row.Features = append([]byte(nil), n.Features...)
			row.Addresses = append([]byte(nil), n.Addresses...)
			if err := visit(&row); err != nil {
				return after, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return after, fmt.Errorf("read node announcements: %w", err)
	}
	return after, nil
}
