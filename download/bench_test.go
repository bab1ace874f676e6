package download_test

import (
	"context"
	"encoding/hex"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/download"
	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// benchInput is the lnresearch capture prepared so that every message can
// be fully validated: the channels of its updates (and channels for the
// nodes of its node announcements) are made known from the index, as a
// database of an earlier sync would, so each message costs a signature
// check and a stored row plus a receipt.
type benchInput struct {
	msgs []download.Message
	keys []persistence.ChannelKeys
	sigs []sigItem // one per update and node announcement
}

// sigItem is one signature check of the input, done bare.
type sigItem struct {
	digest []byte
	sig    lnwire.Sig
	key    *btcec.PublicKey
}

func (it sigItem) verify() bool {
	s, err := it.sig.ToSignature()
	return err == nil && s.Verify(it.digest, it.key)
}

// verifyAll checks every signature of items on all cores: the ceiling of
// validation on this machine.
func verifyAll(b *testing.B, items []sigItem) {
	b.Helper()
	var wg sync.WaitGroup
	n := runtime.GOMAXPROCS(0)
	for w := range n {
		wg.Go(func() {
			for i := w; i < len(items); i += n {
				if !items[i].verify() {
					b.Error("signature does not verify")
					return
				}
			}
		})
	}
	wg.Wait()
}

func loadBenchInput(b *testing.B, src *download.Source) *benchInput {
	b.Helper()
	msgs := readDataset(b)
	index := readIndex(b)
	announced := map[string]bool{}
	for _, r := range index {
		if r.typ == "256" {
			announced[r.scid] = true
		}
	}
	dummy := pub33(newKey(b))
	signers := map[string]*[2][33]byte{}
	var order []string
	nodes := map[[33]byte]bool{}
	in := &benchInput{}
	for i, r := range index {
		var at time.Time
		if r.timestamp != "" {
			ts, _ := strconv.ParseInt(r.timestamp, 10, 64)
			at = time.Unix(ts, 0).Add(time.Minute)
		} else {
			at = time.Now()
		}
		in.msgs = append(in.msgs, download.Message{Wire: msgs[i], At: at, From: src})
		var id [33]byte
		raw, _ := hex.DecodeString(r.nodeIDs[0])
		copy(id[:], raw)
		if (r.typ == "258" || r.typ == "257") && r.nodeIDs[0] != "" {
			key, err := btcec.ParsePubKey(id[:])
			if err != nil {
				b.Fatal(err)
			}
			sig, err := lnwire.NewSigFromWireECDSA(msgs[i][2:66])
			if err != nil {
				b.Fatal(err)
			}
			in.sigs = append(in.sigs, sigItem{digest: chainhash.DoubleHashB(msgs[i][66:]), sig: sig, key: key})
		}
		switch {
		case r.typ == "258" && !announced[r.scid]:
			s := signers[r.scid]
			if s == nil {
				s = &[2][33]byte{dummy, dummy}
				signers[r.scid] = s
				order = append(order, r.scid)
			}
			dir, _ := strconv.Atoi(r.direction)
			s[dir] = id
			nodes[id] = true
		case r.typ == "257":
			nodes[id] = true
		}
	}
	for _, scid := range order {
		s := signers[scid]
		in.keys = append(in.keys, persistence.ChannelKeys{SCID: parseSCID(b, scid), NodeID1: s[0], NodeID2: s[1]})
	}
	// Node announcements need their node to have a channel.
	next := uint64(1) << 63
	for id := range nodes {
		in.keys = append(in.keys, persistence.ChannelKeys{SCID: next, NodeID1: id, NodeID2: dummy})
		next++
	}
	return in
}

func parseSCID(b testing.TB, s string) uint64 {
	var parts [3]uint64
	n := 0
	for _, c := range s {
		if c == 'x' {
			n++
			continue
		}
		parts[n] = parts[n]*10 + uint64(c-'0')
	}
	return parts[0]<<40 | parts[1]<<16 | parts[2]
}

// BenchmarkValidateAndStore measures validated-and-stored messages per
// second: every lnresearch message through decoding, time rules, signature
// checks on all cores, the duplicate filter and the batched writer into
// Postgres, with a receipt per message. Before each round it checks the
// same messages' signatures bare, on all cores, and reports that rate
// (sigs/s, the limit on this machine under the same load) and the ratio of
// the two; BenchmarkVerifySignature measures the bare rate alone.
func BenchmarkValidateAndStore(b *testing.B) {
	url := persistencetest.NewMigratedDatabase(b)
	store := persistencetest.OpenMigrated(b, url)
	ctx := context.Background()
	peer, err := store.UpsertPeer(ctx, pub33(newKey(b)), "127.0.0.1:1")
	if err != nil {
		b.Fatal(err)
	}
	src := &download.Source{PeerID: peer}
	in := loadBenchInput(b, src)
	logger := persistencetest.Logger(b)
	w := persistence.NewWriter(store, persistence.WriterConfig{}, logger)
	w.Start(ctx)
	defer w.Stop()
	var ok int64
	var verifying time.Duration // bare checks, paired with each round
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		start := time.Now()
		verifyAll(b, in.sigs)
		verifying += time.Since(start)
		b.StartTimer()
		// A fresh validator each round: nothing is a duplicate in memory.
		vctx, cancel := context.WithCancel(ctx)
		v := download.NewValidator(download.ValidatorConfig{ChainHash: mainnet}, w, logger)
		for _, k := range in.keys {
			v.AddChannel(k)
		}
		v.Start(vctx)
		for _, m := range in.msgs {
			if err := v.Submit(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		if err := v.Drain(ctx); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		ok += v.Verdicts().Reason(download.ReasonOK)
		cancel()
		v.Stop()
	}
	b.StopTimer()
	if want := int64(len(in.msgs)) * int64(b.N); ok < want*99/100 {
		b.Errorf("only %d of %d messages accepted", ok, want)
	}
	rate := float64(ok) / b.Elapsed().Seconds()
	limit := float64(len(in.sigs)*b.N) / verifying.Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(limit, "sigs/s")
	b.ReportMetric(rate/limit, "ratio")
	b.ReportMetric(float64(len(in.msgs)), "msgs/op")
}

// BenchmarkVerifySignature measures raw ECDSA verification of real
// channel_update signatures, on one core and on all cores: the ceiling of
// BenchmarkValidateAndStore.
func BenchmarkVerifySignature(b *testing.B) {
	msgs := readDataset(b)
	index := readIndex(b)
	type item struct {
		digest []byte
		sig    lnwire.Sig
		key    *btcec.PublicKey
	}
	var items []item
	for i, r := range index {
		if r.typ != "258" || r.nodeIDs[0] == "" || len(items) == 1000 {
			continue
		}
		raw, _ := hex.DecodeString(r.nodeIDs[0])
		key, err := btcec.ParsePubKey(raw)
		if err != nil {
			b.Fatal(err)
		}
		sig, err := lnwire.NewSigFromWireECDSA(msgs[i][2:66])
		if err != nil {
			b.Fatal(err)
		}
		items = append(items, item{digest: chainhash.DoubleHashB(msgs[i][66:]), sig: sig, key: key})
	}
	verify := func(it item) {
		s, err := it.sig.ToSignature()
		if err != nil || !s.Verify(it.digest, it.key) {
			b.Fatal("signature does not verify")
		}
	}
	b.Run("one core", func(b *testing.B) {
		i := 0
		for b.Loop() {
			verify(items[i%len(items)])
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
	})
	b.Run("all cores", func(b *testing.B) {
		b.SetParallelism(1)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				verify(items[i%len(items)])
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
		b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "cores")
	})
}
