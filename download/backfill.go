package download

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/persistence"
)

// Defaults of FundingBackfillConfig.
const (
	DefaultBackfillEvery = 10 * time.Minute
	DefaultBackfillBatch = 500
)

// FundingBackfillConfig configures a FundingBackfill.
type FundingBackfillConfig struct {
	// REST is the base URL of bitcoind's REST interface; required.
	REST string
	// Every is the pause between two rounds. Zero means DefaultBackfillEvery.
	Every time.Duration
	// Batch is how many channels one round checks at most. Zero means
	// DefaultBackfillBatch.
	Batch int
}

// FundingBackfill fills in the funding amounts of stored channels that have
// none: those stored while no chain source was configured or reachable (an
// import, an outage). Each round checks up to Batch channels, in scid order,
// on from where the last round stopped, and wraps around at the end; a
// channel the chain source cannot answer for yet is tried again next round.
// The amount is what version 2 files carry as the capacity; it is never
// guessed. Safe for concurrent use.
type FundingBackfill struct {
	cfg    FundingBackfillConfig
	store  *persistence.Store
	found  func(scid, sats uint64)
	logger *slog.Logger
	check  *fundingChecker

	mu     sync.Mutex
	after  uint64 // scid the next round starts after
	filled atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewFundingBackfill returns a FundingBackfill over store. found, if not
// nil, is called with every amount stored (the lookup index learns it so).
func NewFundingBackfill(cfg FundingBackfillConfig, store *persistence.Store, found func(scid, sats uint64), logger *slog.Logger) *FundingBackfill {
	if cfg.Every <= 0 {
		cfg.Every = DefaultBackfillEvery
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBackfillBatch
	}
	return &FundingBackfill{cfg: cfg, store: store, found: found, logger: logger.With("component", "funding-backfill"),
		check: newFundingChecker(cfg.REST)}
}

// Start runs rounds until ctx ends or Stop is called; the first runs at once.
func (b *FundingBackfill) Start(ctx context.Context) error {
	ctx, b.cancel = context.WithCancel(ctx)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			if _, err := b.Round(ctx); err != nil && ctx.Err() == nil {
				b.logger.Warn("funding back-fill round", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(b.cfg.Every):
			}
		}
	}()
	return nil
}

// Stop ends the rounds and waits for the one in progress.
func (b *FundingBackfill) Stop() {
	if b.cancel != nil {
		b.cancel()
	}
	b.wg.Wait()
}

// Filled is how many funding amounts were stored since start.
func (b *FundingBackfill) Filled() int64 { return b.filled.Load() }

// Round checks the next batch of channels without a funding amount and
// stores what the chain source confirms. It stops early, to try again next
// round, when the source cannot answer.
func (b *FundingBackfill) Round(ctx context.Context) (filled int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	dbCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	batch, err := b.store.ChannelsWithoutFunding(dbCtx, b.after, b.cfg.Batch)
	cancel()
	if err != nil {
		return 0, err
	}
	invalid := 0
	for _, c := range batch {
		sats, err := b.amount(ctx, c)
		switch {
		case errors.Is(err, errFundingUnavailable):
			return filled, err // b.after stays: this channel first next round
		case err != nil:
			invalid++ // unreadable, or the chain contradicts it: no amount
		default:
			dbCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := b.store.SetFunding(dbCtx, c.SCID, sats)
			cancel()
			if err != nil {
				return filled, err
			}
			filled++
			b.filled.Add(1)
			if b.found != nil {
				b.found(c.SCID, sats)
			}
		}
		b.after = c.SCID
	}
	if len(batch) < b.cfg.Batch {
		b.after = 0 // the end: start over next round
	}
	if filled > 0 || invalid > 0 {
		b.logger.Info("funding amounts back-filled", "filled", filled, "not_matching", invalid)
	}
	return filled, nil
}

// amount checks one stored announcement's funding output on chain.
func (b *FundingBackfill) amount(ctx context.Context, c persistence.UnfundedChannel) (uint64, error) {
	msg, err := lnwire.ReadMessage(bytes.NewReader(c.Signed), 0)
	ann, ok := msg.(*lnwire.ChannelAnnouncement1)
	if err != nil || !ok {
		return 0, fmt.Errorf("%w: stored announcement of %d unreadable", errFundingInvalid, c.SCID)
	}
	return b.check.amount(ctx, c.SCID, ann.BitcoinKey1, ann.BitcoinKey2)
}
