package reconcile_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/reconcile"
	"github.com/lnsync/lnsync/reconcile/reconciletest"
)

// rss returns the process's resident set size in bytes.
func rss(t testing.TB) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestResearchMemoryBudget sends eight sketch-estimate requests at once,
// each loading an hour of receipts (540 k at 50 peers), and samples the
// process's RSS: within a budget the peak stays under it above idle, what
// waits too long gets 503 with Retry-After, and the memory is given back
// afterwards. Without a budget the same requests take several times more.
// (Not parallel: it measures the whole process.)
func TestResearchMemoryBudget(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	ds := reconciletest.Generate(reconciletest.Config{
		Seed: 42, Start: t0, Duration: time.Hour, Peers: 50, PerMinute: 300,
		RelayProb: func(int32) float64 { return 0.6 },
		Delay:     func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(240 * time.Second))) },
	})
	recs := ds.PersistenceReceipts()
	db.ingest(t, &reconciletest.Dataset{Sessions: ds.Sessions})
	w := persistence.NewWriter(db.store, persistence.WriterConfig{BatchSize: 20000}, persistencetest.Logger(t))
	w.Start(ctx)
	for _, r := range recs {
		if err := w.Submit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w.Stop()
	receipts := int64(len(recs))
	ds, recs = nil, nil
	perRequest := receipts*reconcile.BytesPerReceipt + 8<<20
	const path = "/v1/reconciliation/sketch-estimate?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&interval=60s"

	run := func(cfg reconcile.Config) (peak, after int64, codes map[int]int, retryAfter bool) {
		svc := reconcile.New(cfg, db.pool, persistencetest.Logger(t), nil)
		srv := httptest.NewServer(mount(t, svc))
		defer srv.Close()
		runtime.GC()
		debug.FreeOSMemory()
		idle := rss(t)
		var max atomic.Int64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				if v := rss(t) - idle; v > max.Load() {
					max.Store(v)
				}
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		codes = map[int]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
					retryAfter = true
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(stop)
		<-sampled
		time.Sleep(300 * time.Millisecond) // the budget gives memory back in the background
		return max.Load(), rss(t) - idle, codes, retryAfter
	}

	budget := 2*perRequest + perRequest/2 // room for two requests at a time
	peak, after, codes, _ := run(reconcile.Config{MemoryBudget: budget, MaxInFlight: 8, AdmissionWait: time.Minute})
	t.Logf("%d receipts per request, charged %d MiB; budget %d MiB: peak %d MiB above idle, %d MiB after; answers %v",
		receipts, perRequest>>20, budget>>20, peak>>20, after>>20, codes)
	if codes[200] != 8 {
		t.Errorf("answers %v; with a minute to wait, all eight are answered in turn", codes)
	}
	if peak > budget {
		t.Errorf("peak RSS %d MiB above idle, over the budget of %d MiB", peak>>20, budget>>20)
	}
	if after > 64<<20 {
		t.Errorf("%d MiB above idle still held after the requests", after>>20)
	}

	unlimited, _, _, _ := run(reconcile.Config{MemoryBudget: 1 << 40, MaxInFlight: 8})
	t.Logf("without a budget: peak %d MiB above idle", unlimited>>20)
	if unlimited <= peak {
		t.Errorf("without a budget the peak (%d MiB) is not higher: the test measures nothing", unlimited>>20)
	}

	// A short wait: what finds no room in time gets 503 with Retry-After.
	_, _, codes, retry := run(reconcile.Config{MemoryBudget: budget, MaxInFlight: 8, AdmissionWait: 10 * time.Millisecond})
	if codes[http.StatusServiceUnavailable] == 0 || !retry || codes[200] == 0 {
		t.Errorf("with a 10 ms wait: answers %v (Retry-After %v); want some answered and the rest 503 with Retry-After", codes, retry)
	}
	// One request needing more than the whole budget is refused outright.
	_, _, codes, _ = run(reconcile.Config{MemoryBudget: perRequest / 2, MaxInFlight: 8})
	if codes[http.StatusBadRequest] != 8 {
		t.Errorf("with a budget smaller than one request: %v, want 8 refused with 400", codes)
	}
}
