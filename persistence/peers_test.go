package persistence_test

import (
	"context"
	"testing"
	"time"

	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

func TestPeersAndSessions(t *testing.T) {
	t.Parallel()
	store := persistencetest.NewStore(t)
	ctx := context.Background()
	var key [33]byte
	key[0] = 2
	id, err := store.UpsertPeer(ctx, key, "127.0.0.1:9735")
	if err != nil {
		t.Fatal(err)
	}
	again, err := store.UpsertPeer(ctx, key, "127.0.0.2:9735")
	if err != nil || again != id {
		t.Fatalf("second upsert = %d, %v; want the same id %d", again, err, id)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s1, err := store.StartPeerSession(ctx, id, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EndPeerSession(ctx, s1, t0.Add(time.Hour), "eof"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.StartPeerSession(ctx, id, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	n, err := store.CloseOpenSessions(ctx, t0.Add(3*time.Hour), "restart")
	if err != nil || n != 1 {
		t.Fatalf("closed %d sessions (%v), want 1", n, err)
	}
	sessions, err := store.PeerSessions(ctx, id, t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 2 || sessions[0].Reason != "eof" || sessions[1].DisconnectedAt == nil || sessions[1].Reason != "restart" {
		t.Errorf("sessions = %+v", sessions)
	}
	if got, _ := store.PeerSessions(ctx, id, t0.Add(90*time.Minute), t0.Add(100*time.Minute)); len(got) != 0 {
		t.Errorf("window between sessions returned %+v", got)
	}
}

func TestChannelKeysAndNewestTimestamp(t *testing.T) {
	t.Parallel()
	store := persistencetest.NewStore(t)
	ctx := context.Background()
	w := persistence.NewWriter(store, persistence.WriterConfig{}, persistencetest.Logger(t))
	w.Start(ctx)
	a := &persistence.ChannelAnnouncement{SCID: 9 << 40, Features: []byte{}, Signed: []byte{9}, FundingSats: 5, FundingKnown: true}
	a.NodeID1[0], a.NodeID2[0] = 2, 3
	w.Submit(ctx, a)
	w.Submit(ctx, &persistence.ChannelUpdate{SCID: 9 << 40, Timestamp: 1234, Signed: []byte{1}})
	w.Submit(ctx, &persistence.NodeAnnouncement{Timestamp: 999, Features: []byte{}, Addresses: []byte{}, Signed: []byte{2}})
	w.Stop()
	var got []persistence.ChannelKeys
	if err := store.LoadChannelKeys(ctx, func(k persistence.ChannelKeys) error { got = append(got, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].SCID != 9<<40 || !got[0].FundingKnown || got[0].FundingSats != 5 || got[0].NodeID2[0] != 3 {
		t.Errorf("channel keys = %+v", got)
	}
	if ts, err := store.NewestGossipTimestamp(ctx); err != nil || ts != 1234 {
		t.Errorf("newest timestamp = %d, %v; want 1234", ts, err)
	}
	c, err := store.Counts(ctx)
	if err != nil || c.ChannelAnnouncements != 1 || c.ChannelUpdates != 1 || c.NodeAnnouncements != 1 {
		t.Errorf("counts = %+v, %v", c, err)
	}
}
