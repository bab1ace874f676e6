package persistence

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// UnfundedChannel is a stored channel announcement whose funding amount is
// not known yet (stored while no chain source was configured or reachable).
type UnfundedChannel struct {
	SCID   uint64
	Signed []byte // the announcement as received
}

// ChannelsWithoutFunding returns up to limit channel announcements without a
// funding amount whose scid is above after, in scid order, so that a caller
// can walk them all in rounds.
func (s *Store) ChannelsWithoutFunding(ctx context.Context, after uint64, limit int) ([]UnfundedChannel, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT scid, signed FROM channel_announcements
		WHERE funding_sats IS NULL AND scid > $1
		ORDER BY scid LIMIT $2`, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("read channels without funding: %w", translate(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (UnfundedChannel, error) {
		var c UnfundedChannel
		var scid int64
		err := row.Scan(&scid, &c.Signed)
		c.SCID = uint64(scid)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read channels without funding: %w", translate(err))
	}
	return out, nil
}

// SetFunding records the funding amount of a channel, checked on chain. An
// amount already stored is kept.
func (s *Store) SetFunding(ctx context.Context, scid, sats uint64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE channel_announcements SET funding_sats = $2 WHERE scid = $1 AND funding_sats IS NULL`,
		int64(scid), int64(sats)); err != nil {
		return fmt.Errorf("set funding of %d: %w", scid, translate(err))
	}
	return nil
}
