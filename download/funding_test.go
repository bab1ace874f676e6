package download_test

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"
	"github.com/jackc/pgx/v5"
	"github.com/lightningnetwork/lnd/input"

	"github.com/lnsync/lnsync/download"
)

// restFixture serves blocks the way bitcoind's REST interface does:
// /rest/blockhashbyheight/H.bin and /rest/block/HASH.bin, 404 otherwise.
func restFixture(t *testing.T, blocks map[uint32]*wire.MsgBlock) *httptest.Server {
	t.Helper()
	byPath := map[string][]byte{}
	for h, b := range blocks {
		hash := b.BlockHash()
		byPath["/rest/blockhashbyheight/"+itoa(h)+".bin"] = hash[:]
		var buf bytes.Buffer
		if err := b.Serialize(&buf); err != nil {
			t.Fatal(err)
		}
		byPath["/rest/block/"+hash.String()+".bin"] = buf.Bytes()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := byPath[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// fundingScript is the P2WSH output script of a channel's 2-of-2.
func fundingScript(t *testing.T, c *channel) []byte {
	t.Helper()
	ms, err := input.GenMultiSigScript(c.btc1.PubKey().SerializeCompressed(), c.btc2.PubKey().SerializeCompressed())
	if err != nil {
		t.Fatal(err)
	}
	pk, err := input.WitnessScriptHash(ms)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// blockWith returns a block whose second transaction has outs.
func blockWith(outs ...*wire.TxOut) *wire.MsgBlock {
	b := wire.NewMsgBlock(&wire.BlockHeader{Version: 4, Timestamp: time.Unix(1700000000, 0)})
	coinbase := wire.NewMsgTx(2)
	coinbase.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: 0xffffffff}, SignatureScript: []byte{1, 2}})
	coinbase.AddTxOut(wire.NewTxOut(50, []byte{0x51}))
	b.AddTransaction(coinbase)
	funding := wire.NewMsgTx(2)
	funding.AddTxIn(&wire.TxIn{PreviousOutPoint: wire.OutPoint{Index: 1}})
	for _, o := range outs {
		funding.AddTxOut(o)
	}
	b.AddTransaction(funding)
	return b
}

func TestFundingCheck(t *testing.T) {
	t.Parallel()
	s := signer{t: t, chain: regtest}
	const height = 700
	scid := func(h, tx, out uint64) uint64 { return h<<40 | tx<<16 | out }
	good := s.newChannel(scid(height, 1, 0))
	wrongKeys := s.newChannel(scid(height, 1, 1))
	noOutput := s.newChannel(scid(height, 1, 5))
	noBlock := s.newChannel(scid(height+1, 1, 0))
	const capacity = 500_000
	srv := restFixture(t, map[uint32]*wire.MsgBlock{
		height: blockWith(wire.NewTxOut(capacity, fundingScript(t, good)), wire.NewTxOut(1000, fundingScript(t, s.newChannel(1)))),
	})
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close() // nothing listens there any more

	env := newWriterEnv(t)
	url, w, logger := env.url, env.w, env.logger
	ctx := t.Context()
	now := time.Now()
	unchecked := s.newChannel(scid(height, 1, 0) + 1<<40*10)

	tests := []struct {
		name    string
		rest    string
		msgs    [][]byte
		want    map[string]int64
		funding map[uint64]int64 // stored funding_sats by scid, -1 for NULL
	}{
		{
			name: "funding output checked",
			rest: srv.URL + "/rest",
			msgs: [][]byte{
				s.announcement(good, false),
				s.updateMax(good, 0, now, 1, nil, capacity*1000),
				s.updateMax(good, 1, now, 1, nil, capacity*1000+1),
				s.announcement(wrongKeys, false),
				s.announcement(noOutput, false),
				s.announcement(noBlock, false),
			},
			want: map[string]int64{"channel_announcement/ok": 1, "channel_announcement/funding_invalid": 3,
				"channel_update/ok": 1, "channel_update/htlc_max_exceeds_capacity": 1},
			funding: map[uint64]int64{good.scid: capacity},
		},
		{
			name:    "endpoint down: stored with unknown capacity",
			rest:    downURL + "/rest",
			msgs:    [][]byte{s.announcement(unchecked, false), s.updateMax(unchecked, 0, now, 1, nil, 21e6*1e8*1000)},
			want:    map[string]int64{"channel_announcement/ok": 1, "channel_update/ok": 1},
			funding: map[uint64]int64{unchecked.scid: -1},
		},
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vctx, cancel := context.WithCancel(ctx)
			v := download.NewValidator(download.ValidatorConfig{ChainHash: regtest, FundingREST: tc.rest}, w, logger)
			v.Start(vctx)
			defer func() { cancel(); v.Stop() }()
			src := &download.Source{}
			for _, m := range tc.msgs {
				if err := v.Submit(ctx, download.Message{Wire: m, At: time.Now(), From: src}); err != nil {
					t.Fatal(err)
				}
			}
			if err := v.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if got := v.Verdicts().Map(); !maps.Equal(got, tc.want) {
				t.Errorf("verdicts = %v, want %v", got, tc.want)
			}
			for scid, want := range tc.funding {
				var got *int64
				if err := conn.QueryRow(ctx, `SELECT funding_sats FROM channel_announcements WHERE scid = $1`, int64(scid)).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if (got == nil) != (want < 0) || got != nil && *got != want {
					t.Errorf("channel %d stored with funding %v, want %d (-1: unknown)", scid, got, want)
				}
			}
		})
	}
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1") {
		t.Errorf("fixture listens on %s, want loopback", srv.URL)
	}
}
