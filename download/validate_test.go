package download_test

import (
	"context"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnsync/lnsync/download"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

var regtest = mustChain("regtest")

// writerEnv is a fresh migrated database with a running writer, stopped
// when the test ends.
type writerEnv struct {
	url    string
	store  *persistence.Store
	w      *persistence.Writer
	logger *slog.Logger
}

func newWriterEnv(t *testing.T) writerEnv {
	t.Helper()
	e := writerEnv{url: persistencetest.NewMigratedDatabase(t), logger: persistencetest.Logger(t)}
	e.store = persistencetest.OpenMigrated(t, e.url)
	e.w = persistence.NewWriter(e.store, persistence.WriterConfig{FlushInterval: 10 * time.Millisecond}, e.logger)
	e.w.Start(t.Context())
	t.Cleanup(e.w.Stop)
	return e
}

// step delivers one message.
type step struct {
	wire   []byte
	at     time.Time     // zero: now
	peer   int32         // 0: peer 1
	pause  time.Duration // before delivering
	stored bool          // must be stored
}

func TestValidate(t *testing.T) {
	t.Parallel()
	env := newWriterEnv(t)
	url, store, w, logger := env.url, env.store, env.w, env.logger
	ctx := t.Context()
	var peers [3]int32
	for i := 1; i < 3; i++ {
		var err error
		if peers[i], err = store.UpsertPeer(ctx, pub33(newKey(t)), "127.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
	}

	s := signer{t: t, chain: regtest}
	now := time.Now()
	const waitBound = 300 * time.Millisecond

	// A real channel from the lnresearch capture, with its updates and the
	// node announcements of its nodes, at the capture's own time.
	real := realChannel(t)

	type testCase struct {
		name  string
		chain [32]byte
		steps func() []step
		want  map[string]int64
		// receipts is how many receipts the first message must have.
		receipts int
		// known are channels loaded from the database before the start.
		known []persistence.ChannelKeys
	}
	tests := []testCase{
		{
			name: "real signed mainnet messages", chain: mainnet,
			steps: func() []step { return real },
			want: map[string]int64{"channel_announcement/ok": 1, "channel_update/ok": int64(countKind(real, 258)),
				"node_announcement/ok": int64(countKind(real, 257))},
		},
		func() testCase {
			c := s.newChannel(1 << 40)
			return testCase{
				name: "announcement, both updates, both nodes, from two peers",
				steps: func() []step {
					return []step{{wire: s.announcement(c, false), stored: true}, {wire: s.announcement(c, false), peer: 2},
						{wire: s.update(c, 0, now, 1, nil), stored: true}, {wire: s.update(c, 1, now, 2, nil), stored: true},
						{wire: s.node(c.n1, now, "one"), stored: true}, {wire: s.node(c.n2, now, "two"), stored: true}}
				},
				want: map[string]int64{"channel_announcement/ok": 1, "channel_announcement/duplicate": 1,
					"channel_update/ok": 2, "node_announcement/ok": 2},
				receipts: 2,
			}
		}(),
		func() testCase {
			c := s.newChannel(2 << 40)
			return testCase{
				name:  "node ids out of order",
				steps: func() []step { return []step{{wire: s.announcement(c, true)}} },
				want:  map[string]int64{"channel_announcement/node_order": 1},
			}
		}(),
		func() testCase {
			c := s.newChannel(3 << 40)
			other := signer{t: t, chain: mainnet}
			return testCase{
				name: "wrong chain",
				steps: func() []step {
					return []step{{wire: s.announcement(c, false), stored: true}, {wire: other.update(c, 0, now, 1, nil)},
						{wire: other.announcement(s.newChannel(4<<40), false)}}
				},
				want: map[string]int64{"channel_announcement/ok": 1, "channel_announcement/wrong_chain": 1, "channel_update/wrong_chain": 1},
			}
		}(),
		func() testCase {
			c := s.newChannel(5 << 40)
			bad := s.newChannel(6 << 40)
			ann := s.announcement(bad, false)
			ann[2+3*64+10] ^= 1 // the second bitcoin signature
			return testCase{
				name: "bad signatures",
				steps: func() []step {
					return []step{{wire: s.announcement(c, false), stored: true},
						{wire: s.update(c, 0, now, 1, c.n2)}, // direction 0 signed by node 2
						{wire: s.update(c, 1, now, 1, newKey(t))},
						{wire: s.node(c.n1, now, "x")[:100]}, // truncated
						{wire: ann}}
				},
				want: map[string]int64{"channel_announcement/ok": 1, "channel_announcement/bad_signature": 1,
					"channel_update/bad_signature": 2, "node_announcement/malformed": 1},
			}
		}(),
		func() testCase {
			c := s.newChannel(7 << 40)
			return testCase{
				name: "timestamps a day ahead and two weeks behind",
				steps: func() []step {
					return []step{{wire: s.announcement(c, false), stored: true},
						{wire: s.update(c, 0, now.Add(23*time.Hour), 1, nil), stored: true},
						{wire: s.update(c, 0, now.Add(25*time.Hour), 2, nil)},
						{wire: s.update(c, 1, now.Add(-13*24*time.Hour), 3, nil), stored: true},
						{wire: s.update(c, 1, now.Add(-15*24*time.Hour), 4, nil)},
						{wire: s.node(c.n1, now.Add(2*24*time.Hour), "ahead")},
						// The clock is the receive time, not the wall clock.
						{wire: s.node(c.n2, now.Add(-20*24*time.Hour), "old"), at: now.Add(-19 * 24 * time.Hour), stored: true}}
				},
				want: map[string]int64{"channel_announcement/ok": 1, "channel_update/ok": 2, "channel_update/too_new": 1,
					"channel_update/too_old": 1, "node_announcement/too_new": 1, "node_announcement/ok": 1},
			}
		}(),
		func() testCase {
			c := s.newChannel(8 << 40)
			return testCase{
				name: "update and node announcement before their channel, within the waiting bound",
				steps: func() []step {
					return []step{{wire: s.update(c, 1, now, 1, nil), stored: true}, {wire: s.node(c.n2, now, "early"), stored: true},
						{wire: s.announcement(c, false), pause: waitBound / 3, stored: true}}
				},
				want: map[string]int64{"channel_announcement/ok": 1, "channel_update/ok": 1, "node_announcement/ok": 1},
			}
		}(),
		func() testCase {
			c := s.newChannel(9 << 40)
			lonely := newKey(t)
			return testCase{
				name: "update and node announcement before their channel, after the waiting bound",
				steps: func() []step {
					return []step{{wire: s.update(c, 1, now, 1, nil)}, {wire: s.node(c.n2, now, "late")},
						{wire: s.node(lonely, now, "lonely")},
						{wire: s.announcement(c, false), pause: 3 * waitBound, stored: true}}
				},
				want: map[string]int64{"channel_announcement/ok": 1, "channel_update/unknown_channel": 1, "node_announcement/no_channel": 2},
			}
		}(),
		func() testCase {
			c := s.newChannel(10 << 40)
			u := s.update(c, 0, now, 1, nil)
			return testCase{
				name: "duplicates verified once, receipts per peer",
				steps: func() []step {
					return []step{{wire: u, stored: true}, {wire: s.announcement(c, false), stored: true},
						{wire: u, peer: 2, pause: 50 * time.Millisecond}, {wire: u, peer: 2}, {wire: u}}
				},
				want:     map[string]int64{"channel_announcement/ok": 1, "channel_update/ok": 1, "channel_update/duplicate": 3},
				receipts: 2,
			}
		}(),
		func() testCase {
			c := s.newChannel(11 << 40)
			u := s.update(c, 1, now, 1, nil)
			return testCase{
				name: "channel stored by an earlier run",
				steps: func() []step {
					return []step{{wire: u, stored: true}, {wire: s.announcement(c, false), peer: 2}}
				},
				known:    []persistence.ChannelKeys{{SCID: c.scid, NodeID1: pub33(c.n1), NodeID2: pub33(c.n2)}},
				want:     map[string]int64{"channel_update/ok": 1, "channel_announcement/duplicate": 1},
				receipts: 1,
			}
		}(),
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chain := tc.chain
			if chain == ([32]byte{}) {
				chain = regtest
			}
			vctx, cancel := context.WithCancel(ctx)
			v := download.NewValidator(download.ValidatorConfig{ChainHash: chain, PendingTimeout: waitBound}, w, logger)
			for _, k := range tc.known {
				v.AddChannel(k)
			}
			v.Start(vctx)
			defer func() { cancel(); v.Stop() }()
			sources := map[int32]*download.Source{}
			steps := tc.steps()
			for _, st := range steps {
				time.Sleep(st.pause)
				id := peers[max(st.peer, 1)]
				if sources[id] == nil {
					sources[id] = &download.Source{PeerID: id}
				}
				at := st.at
				if at.IsZero() {
					at = time.Now()
				}
				if err := v.Submit(ctx, download.Message{Wire: st.wire, At: at, From: sources[id]}); err != nil {
					t.Fatal(err)
				}
			}
			if err := v.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			// Let whatever waits for a channel run out of time.
			for deadline := time.Now().Add(10 * waitBound); v.Pending() > 0 && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if got := v.Verdicts().Map(); !maps.Equal(got, tc.want) {
				t.Errorf("verdicts = %v, want %v", got, tc.want)
			}
			mustStore := map[string]bool{}
			for _, st := range steps {
				mustStore[string(st.wire)] = mustStore[string(st.wire)] || st.stored
			}
			for i, st := range steps {
				var n int
				err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM channel_announcements WHERE signed = $1)
					+ (SELECT count(*) FROM channel_updates WHERE signed = $1) + (SELECT count(*) FROM node_announcements WHERE signed = $1)`,
					st.wire).Scan(&n)
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int{true: 1}[mustStore[string(st.wire)]]; n != want {
					t.Errorf("step %d stored %d times, want %d", i, n, want)
				}
			}
			if tc.receipts > 0 {
				var n int
				if err := conn.QueryRow(ctx, `SELECT count(*) FROM receipts WHERE msg_hash = $1`,
					persistence.MessageHash(steps[0].wire)).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != tc.receipts {
					t.Errorf("%d receipts for the first message, want %d", n, tc.receipts)
				}
			}
		})
	}
}

func countKind(steps []step, typ uint16) int {
	n := 0
	for _, s := range steps {
		if uint16(s.wire[0])<<8|uint16(s.wire[1]) == typ {
			n++
		}
	}
	return n
}

// realChannel returns a channel announcement of the lnresearch capture with
// its updates and the node announcements of its nodes, each at a receive
// time just after its timestamp.
func realChannel(t *testing.T) []step {
	t.Helper()
	msgs := readDataset(t)
	index := readIndex(t)
	var ann indexRow
	for _, r := range index {
		if r.typ == "256" {
			ann = r
			break
		}
	}
	at := func(ts string) time.Time {
		var n int64
		for _, c := range ts {
			n = n*10 + int64(c-'0')
		}
		return time.Unix(n, 0).Add(time.Minute)
	}
	// The announcement has no timestamp: receive it with its first update.
	var out []step
	var first time.Time
	for i, r := range index {
		switch {
		case r.typ == "258" && r.scid == ann.scid:
			out = append(out, step{wire: msgs[i], at: at(r.timestamp), stored: true})
			if first.IsZero() {
				first = at(r.timestamp)
			}
		case r.typ == "257" && (r.nodeIDs[0] == ann.nodeIDs[0] || r.nodeIDs[0] == ann.nodeIDs[1]):
			out = append(out, step{wire: msgs[i], at: at(r.timestamp), stored: true})
		}
	}
	if len(out) < 2 || first.IsZero() {
		t.Fatalf("channel %s has too few messages in the capture", ann.scid)
	}
	return append([]step{{wire: msgs[ann.seq], at: first, stored: true}}, out...)
}
