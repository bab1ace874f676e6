package reconcile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrTooLarge reports that a window holds more receipts than the caller
// allowed; the message names the limit.
var ErrTooLarge = errors.New("window too large")

// Store reads receipts, sessions and gossip from lnsync's database and reads
// and writes the aggregate tables of migration 0002. It is safe for
// concurrent use; the pool belongs to the caller.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// pgEpochMicros is 2000-01-01 UTC, Postgres' timestamp epoch, in Unix µs.
const pgEpochMicros = 946684800000000

// binaryFormat asks for every result column in binary.
var binaryFormat = pgx.QueryResultFormats{pgx.BinaryFormatCode}

// LoadWindow reads the receipt set of [from, to): the receipts of
// [from−Horizon, to+Horizon), the sessions overlapping the window and the
// gossip fields of the messages. It fails with ErrTooLarge once more than
// maxReceipts receipts have been read (0: no limit).
func (s *Store) LoadWindow(ctx context.Context, from, to time.Time, maxReceipts int) (*Window, error) {
	return s.load(ctx, from, to, maxReceipts, true)
}

// LoadDeliveries is LoadWindow without the gossip fields (every
// Message.Gossip is nil): all that sketch estimates need, and on long
// windows markedly cheaper, since finding keep-alives compares every
// channel_update with its predecessor.
func (s *Store) LoadDeliveries(ctx context.Context, from, to time.Time, maxReceipts int) (*Window, error) {
	return s.load(ctx, from, to, maxReceipts, false)
}

// CountReceipts returns how many receipts a load of [from, to) reads (the
// window and the Horizon around it).
func (s *Store) CountReceipts(ctx context.Context, from, to time.Time) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM receipts WHERE received_at >= $1 AND received_at < $2`,
		from.Add(-Horizon), to.Add(Horizon)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count receipts: %w", err)
	}
	return n, nil
}

func (s *Store) load(ctx context.Context, from, to time.Time, maxReceipts int, gossip bool) (*Window, error) {
	b := NewBuilder(Micros(from), Micros(to))
	lo, hi := from.Add(-Horizon), to.Add(Horizon)
	rows, err := s.pool.Query(ctx, `
		SELECT received_at, peer_id, msg_hash, msg_type, size FROM receipts
		WHERE received_at >= $1 AND received_at < $2`, binaryFormat, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read receipts: %w", err)
	}
	n := 0
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 5 || len(v[0]) != 8 || len(v[1]) != 4 || len(v[2]) != 8 || len(v[3]) != 2 || len(v[4]) != 4 {
			rows.Close()
			return nil, errors.New("read receipts: unexpected row encoding")
		}
		n++
		if maxReceipts > 0 && n > maxReceipts {
			rows.Close()
			return nil, fmt.Errorf("%w: more than %d receipts", ErrTooLarge, maxReceipts)
		}
		b.Add(Receipt{
			At:   int64(binary.BigEndian.Uint64(v[0])) + pgEpochMicros,
			Peer: int32(binary.BigEndian.Uint32(v[1])),
			Hash: int64(binary.BigEndian.Uint64(v[2])),
			Type: binary.BigEndian.Uint16(v[3]),
			Size: int32(binary.BigEndian.Uint32(v[4])),
		})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read receipts: %w", err)
	}
	if err := s.loadSessions(ctx, b, from, to); err != nil {
		return nil, err
	}
	if gossip {
		if err := s.loadGossip(ctx, b, lo, hi); err != nil {
			return nil, err
		}
	}
	return b.Window(), nil
}

func (s *Store) loadSessions(ctx context.Context, b *Builder, from, to time.Time) error {
	rows, err := s.pool.Query(ctx, `
		SELECT peer_id, connected_at, coalesce(disconnected_at, $3) FROM peer_sessions
		WHERE connected_at < $2 AND (disconnected_at IS NULL OR disconnected_at > $1)`,
		from.Add(-Horizon), to.Add(Horizon), to.Add(2*Horizon))
	if err != nil {
		return fmt.Errorf("read sessions: %w", err)
	}
	var (
		peer     int32
		cFrom, t time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&peer, &cFrom, &t}, func() error {
		b.AddSession(peer, Interval{From: Micros(cFrom), To: Micros(t)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("read sessions: %w", err)
	}
	return nil
}

// The gossip queries compute persistence.MessageHash in SQL: the first 8
// bytes of the message's SHA-256 as a signed big-endian integer.
const (
	updatesSQL = `
		SELECT ('x' || encode(substr(sha256(u.signed), 1, 8), 'hex'))::bit(64)::bigint,
		       u.timestamp, u.scid, u.direction,
		       coalesce(p.message_flags = u.message_flags AND p.channel_flags = u.channel_flags
		            AND p.cltv_expiry_delta = u.cltv_expiry_delta AND p.htlc_minimum_msat = u.htlc_minimum_msat
		            AND p.fee_base_msat = u.fee_base_msat
		            AND p.fee_proportional_millionths = u.fee_proportional_millionths
		            AND p.htlc_maximum_msat = u.htlc_maximum_msat, false)
		FROM channel_updates u
		LEFT JOIN LATERAL (
			SELECT * FROM channel_updates p
			WHERE p.scid = u.scid AND p.direction = u.direction AND p.timestamp < u.timestamp
			ORDER BY p.timestamp DESC LIMIT 1) p ON true
		WHERE u.seen >= $1 AND u.seen < $2`
	nodesSQL = `
		SELECT ('x' || encode(substr(sha256(signed), 1, 8), 'hex'))::bit(64)::bigint, timestamp, node_id
		FROM node_announcements
		WHERE seen >= $1 AND seen < $2`
)

func (s *Store) loadGossip(ctx context.Context, b *Builder, lo, hi time.Time) error {
	rows, err := s.pool.Query(ctx, updatesSQL, lo, hi)
	if err != nil {
		return fmt.Errorf("read channel updates: %w", err)
	}
	var (
		h, ts, scid int64
		dir         int16
		keep        bool
	)
	_, err = pgx.ForEachRow(rows, []any{&h, &ts, &scid, &dir, &keep}, func() error {
		b.AddGossip(h, Gossip{Timestamp: ts, SCID: scid, Direction: dir, KeepAlive: keep})
		return nil
	})
	if err != nil {
		return fmt.Errorf("read channel updates: %w", err)
	}
	rows, err = s.pool.Query(ctx, nodesSQL, lo, hi)
	if err != nil {
		return fmt.Errorf("read node announcements: %w", err)
	}
	var node []byte
	_, err = pgx.ForEachRow(rows, []any{&h, &ts, &node}, func() error {
		b.AddGossip(h, Gossip{Timestamp: ts, NodeID: string(node)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("read node announcements: %w", err)
	}
	return nil
}

// AggregatedHours returns the start (Unix µs) of every aggregated hour in
// [from, to).
func (s *Store) AggregatedHours(ctx context.Context, from, to time.Time) (map[int64]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT hour FROM receipt_agg_hours WHERE hour >= $1 AND hour < $2`, from, to)
	if err != nil {
		return nil, fmt.Errorf("read aggregated hours: %w", err)
	}
	hours, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("read aggregated hours: %w", err)
	}
	out := make(map[int64]bool, len(hours))
	for _, h := range hours {
		out[Micros(h)] = true
	}
	return out, nil
}

// LastAggregatedHour returns the newest aggregated hour, or the zero time.
func (s *Store) LastAggregatedHour(ctx context.Context) (time.Time, error) {
	var h *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(hour) FROM receipt_agg_hours`).Scan(&h); err != nil {
		return time.Time{}, fmt.Errorf("read last aggregated hour: %w", err)
	}
	if h == nil {
		return time.Time{}, nil
	}
	return h.UTC(), nil
}

// WriteHour replaces the aggregates of the hour starting at hour with sum, in
// one transaction.
func (s *Store) WriteHour(ctx context.Context, hour time.Time, sum *Summary) error {
	var receipts int64
	for i := range sum.Messages {
		receipts += int64(sum.Messages[i].Receipts)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, sql := range []string{
			`DELETE FROM receipt_agg_messages WHERE hour = $1`,
			`DELETE FROM receipt_agg_peers WHERE hour = $1`,
			`DELETE FROM receipt_agg_hours WHERE hour = $1`,
		} {
			if _, err := tx.Exec(ctx, sql, hour); err != nil {
				return fmt.Errorf("clear hour: %w", err)
			}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"receipt_agg_messages"},
			[]string{"hour", "msg_hash", "first_seen", "msg_type", "size", "receipts", "connected", "delay_q", "covered",
				"gossip_ts", "scid", "direction", "node_id", "keepalive"},
			pgx.CopyFromSlice(len(sum.Messages), func(i int) ([]any, error) {
				m := &sum.Messages[i]
				row := []any{hour, m.Hash, time.UnixMicro(m.First), int16(m.Type), m.Size, m.Receipts, m.Connected,
					m.Delay[:], m.Covered[:], nil, nil, nil, nil, nil}
				if g := m.Gossip; g != nil {
					row[9] = g.Timestamp
					if m.Type == TypeChannelUpdate {
						row[10], row[11], row[13] = g.SCID, g.Direction, g.KeepAlive
					} else {
						row[12] = []byte(g.NodeID)
					}
				}
				return row, nil
			}))
		if err != nil {
			return fmt.Errorf("copy message aggregates: %w", err)
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"receipt_agg_peers"},
			[]string{"hour", "peer_id", "delivered", "eligible", "relayed", "first_responder", "bytes", "lag_hist"},
			pgx.CopyFromSlice(len(sum.Peers), func(i int) ([]any, error) {
				p := &sum.Peers[i]
				return []any{hour, p.Peer, p.Delivered, p.Eligible, p.Relayed, p.FirstResponder, p.Bytes, p.Lag[:]}, nil
			}))
		if err != nil {
			return fmt.Errorf("copy peer aggregates: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO receipt_agg_hours (hour, messages, receipts) VALUES ($1, $2, $3)`,
			hour, len(sum.Messages), receipts); err != nil {
			return fmt.Errorf("record hour: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write aggregates of %s: %w", hour.Format(time.RFC3339), err)
	}
	return nil
}

// ReadHours returns the merged aggregates of the aggregated hours in
// [from, to); from and to are whole hours.
func (s *Store) ReadHours(ctx context.Context, from, to time.Time) (*Summary, error) {
	sum := &Summary{From: Micros(from), To: Micros(to)}
	rows, err := s.pool.Query(ctx, `
		SELECT msg_hash, first_seen, msg_type, size, receipts, connected, delay_q, covered,
		       gossip_ts, scid, direction, node_id, keepalive
		FROM receipt_agg_messages WHERE hour >= $1 AND hour < $2`, from, to)
	if err != nil {
		return nil, fmt.Errorf("read message aggregates: %w", err)
	}
	var (
		m        MessageStat
		first    time.Time
		typ      int16
		delay    []float32
		covered  []int32
		gts      *int64
		scid     *int64
		dir      *int16
		node     []byte
		keepLive *bool
	)
	_, err = pgx.ForEachRow(rows, []any{&m.Hash, &first, &typ, &m.Size, &m.Receipts, &m.Connected, &delay, &covered,
		&gts, &scid, &dir, &node, &keepLive}, func() error {
		st := MessageStat{Hash: m.Hash, Type: uint16(typ), Size: m.Size, First: Micros(first), Receipts: m.Receipts, Connected: m.Connected}
		copy(st.Delay[:], delay)
		copy(st.Covered[:], covered)
		if gts != nil {
			g := &Gossip{Timestamp: *gts, NodeID: string(node)}
			if scid != nil {
				g.SCID = *scid
			}
			if dir != nil {
				g.Direction = *dir
			}
			if keepLive != nil {
				g.KeepAlive = *keepLive
			}
			st.Gossip = g
		}
		sum.Messages = append(sum.Messages, st)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read message aggregates: %w", err)
	}
	rows, err = s.pool.Query(ctx, `
		SELECT peer_id, delivered, eligible, relayed, first_responder, bytes, lag_hist
		FROM receipt_agg_peers WHERE hour >= $1 AND hour < $2`, from, to)
	if err != nil {
		return nil, fmt.Errorf("read peer aggregates: %w", err)
	}
	var (
		p    PeerStat
		hist []int32
	)
	parts := &Summary{}
	_, err = pgx.ForEachRow(rows, []any{&p.Peer, &p.Delivered, &p.Eligible, &p.Relayed, &p.FirstResponder, &p.Bytes, &hist}, func() error {
		ps := p
		copy(ps.Lag[:], hist)
		parts.Peers = append(parts.Peers, ps)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read peer aggregates: %w", err)
	}
	merged := Merge(sum.From, sum.To, []*Summary{sum, parts})
	return merged, nil
}

// PruneAggregates deletes the aggregates of hours before cutoff.
func (s *Store) PruneAggregates(ctx context.Context, cutoff time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, sql := range []string{
			`DELETE FROM receipt_agg_messages WHERE hour < $1`,
			`DELETE FROM receipt_agg_peers WHERE hour < $1`,
			`DELETE FROM receipt_agg_hours WHERE hour < $1`,
		} {
			if _, err := tx.Exec(ctx, sql, cutoff); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("prune aggregates: %w", err)
	}
	return nil
}
