package persistence

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// WaitingMessage is a channel update whose channel announcement is not
// stored yet, or a node announcement of a node without a stored channel. It
// is kept unverified and never served: once the announcement is accepted it
// is taken back and validated like any message.
type WaitingMessage struct {
	// SCID is the channel a channel update waits for; zero for a node
	// announcement.
	SCID uint64
	// NodeID is the node a node announcement waits for a channel of.
	NodeID [33]byte
	// Signed is the wire message, type included.
	Signed []byte
	// ReceivedAt is when it was read (the import clock).
	ReceivedAt time.Time
	// Imported is set for messages read by lnsync import.
	Imported bool
}

// AddWaiting stores messages to wait for their channel and returns how many
// were new (a message already waiting is kept once).
func (s *Store) AddWaiting(ctx context.Context, msgs []WaitingMessage) (int64, error) {
	var added int64
	for len(msgs) > 0 {
		n := min(len(msgs), waitingChunk)
		k, err := s.addWaiting(ctx, msgs[:n])
		added += k
		if err != nil {
			return added, err
		}
		msgs = msgs[n:]
	}
	return added, nil
}

// waitingChunk is how many waiting messages one statement stores.
const waitingChunk = 10000

func (s *Store) addWaiting(ctx context.Context, msgs []WaitingMessage) (int64, error) {
	scids := make([]*int64, len(msgs))
	nodes := make([][]byte, len(msgs))
	signed := make([][]byte, len(msgs))
	received := make([]time.Time, len(msgs))
	imported := make([]bool, len(msgs))
	for i, m := range msgs {
		if m.SCID != 0 {
			v := int64(m.SCID)
			scids[i] = &v
		} else {
			nodes[i] = m.NodeID[:]
		}
		signed[i], received[i], imported[i] = m.Signed, m.ReceivedAt, m.Imported
	}
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO waiting_messages (scid, node_id, signed, received_at, imported)
		SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::timestamptz[], $5::boolean[])
		ON CONFLICT ON CONSTRAINT waiting_messages_once DO NOTHING`, scids, nodes, signed, received, imported)
	if err != nil {
		return 0, fmt.Errorf("store waiting messages: %w", translate(err))
	}
	return tag.RowsAffected(), nil
}

// TakeWaiting removes and returns the messages waiting for channel scid and
// for nodes, oldest first.
func (s *Store) TakeWaiting(ctx context.Context, scid uint64, nodes [][33]byte) ([]WaitingMessage, error) {
	ids := make([][]byte, len(nodes))
	for i := range nodes {
		ids[i] = nodes[i][:]
	}
	rows, err := s.pool.Query(ctx, `
		DELETE FROM waiting_messages WHERE scid = $1 OR node_id = ANY($2)
		RETURNING coalesce(scid, 0), coalesce(node_id, ''::bytea), signed, received_at, imported`, int64(scid), ids)
	if err != nil {
		return nil, fmt.Errorf("take waiting messages: %w", translate(err))
	}
	defer rows.Close()
	var out []WaitingMessage
	for rows.Next() {
		var m WaitingMessage
		var sc int64
		var node []byte
		if err := rows.Scan(&sc, &node, &m.Signed, &m.ReceivedAt, &m.Imported); err != nil {
			return nil, fmt.Errorf("take waiting messages: %w", translate(err))
		}
		m.SCID = uint64(sc)
		copy(m.NodeID[:], node)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("take waiting messages: %w", translate(err))
	}
	// Oldest first, so versions are validated in the order they were read.
	slices.SortStableFunc(out, func(a, b WaitingMessage) int { return a.ReceivedAt.Compare(b.ReceivedAt) })
	return out, nil
}

// CountWaiting returns how many channel updates and node announcements wait
// for their channel.
func (s *Store) CountWaiting(ctx context.Context) (updates, nodes int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(scid), count(node_id) FROM waiting_messages`).Scan(&updates, &nodes)
	if err != nil {
		return 0, 0, fmt.Errorf("count waiting messages: %w", translate(err))
	}
	return updates, nodes, nil
}
