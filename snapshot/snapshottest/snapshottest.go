// Package snapshottest provides a deterministic in-memory delta source, so
// that snapshot generations can be published in tests without a database.
package snapshottest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/lnsync/lnsync/lookup"
	"github.com/lnsync/lnsync/rgs"
)

// Keys returns n valid node keys in ascending byte order.
func Keys(n int) []rgs.NodeID {
	out := make([]rgs.NodeID, n)
	for i := range out {
		var secret [32]byte
		secret[0] = 1
		secret[30], secret[31] = byte(i>>8), byte(i)
		_, pub := btcec.PrivKeyFromBytes(secret[:])
		copy(out[i][:], pub.SerializeCompressed())
	}
	slices.SortFunc(out, func(a, b rgs.NodeID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Source is a snapshot source (snapshot.Source) whose deltas depend only on (last, ref): the
// full snapshot has Channels channels, a delta one channel per 3 hours of its
// scope (at least one, at most Channels), so every scope's file differs. Set
// Err to make Delta fail. Safe for concurrent use.
type Source struct {
	Channels int
	Chain    [32]byte

	mu   sync.Mutex
	err  error
	keys []rgs.NodeID
}

// NewSource returns a Source over mainnet with n channels.
func NewSource(n int) *Source {
	return &Source{Channels: n, Chain: rgs.ChainMainnet, keys: Keys(2 * n)}
}

// SetErr makes every later Delta return err (nil to succeed again).
func (s *Source) SetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// CatchUp implements snapshot.Source.
func (s *Source) CatchUp(ctx context.Context, ref time.Time) error { return ctx.Err() }

// Delta implements snapshot.Source.
func (s *Source) Delta(last, ref time.Time) (*rgs.Delta, lookup.DeltaStats, error) {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return nil, lookup.DeltaStats{}, err
	}
	n := s.Channels
	if last.Unix() > 0 {
		n = min(max(int(ref.Sub(last)/(3*time.Hour)), 1), s.Channels)
	}
	d := &rgs.Delta{ChainHash: s.Chain, Timestamp: uint32(ref.Unix())}
	for i := range n {
		scid := uint64(800_000+i)<<40 | 1<<16
		d.Announcements = append(d.Announcements, rgs.Announcement{
			SCID: scid, Features: []byte{}, NodeID1: s.keys[2*i], NodeID2: s.keys[2*i+1],
			FundingSats: 1_000_000, FundingKnown: true,
		})
		for dir := range 2 {
			d.Updates = append(d.Updates, rgs.Update{SCID: scid, Direction: uint8(dir), Kind: rgs.Full, Policy: rgs.Policy{
				CLTVExpiryDelta: 40, HTLCMinimumMsat: 1000, FeeBaseMsat: uint32(1000 + i), FeeProportionalMillionths: uint32(dir + 1),
				HTLCMaximumMsat: 990_000_000,
			}})
		}
	}
	return d, lookup.DeltaStats{Announcements: n, Full: 2 * n}, nil
}

// ErrInjected is the error tests inject with SetErr.
var ErrInjected = errors.New("injected failure")

// Logger returns a logger writing to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}
