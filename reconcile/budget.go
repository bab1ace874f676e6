package reconcile

import (
	"context"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/lnsync/lnsync/server"
)

// BytesPerReceipt is the memory a request is charged for each receipt it
// loads: the window builder allocates about 55 bytes per receipt while
// loading (measured on an hour at mainnet rates, 1.08 M receipts), of which
// about 9 stay in the finished window; with the garbage collector's
// headroom, 64.
const BytesPerReceipt = 64

// requestBase is what a request is charged besides its receipts (sessions,
// the report, the estimate's rounds).
const requestBase = 8 << 20

// budget admits research requests by the memory they will hold, so that
// requests in flight together stay under a ceiling, and gives the memory of
// large ones back to the operating system once none is running.
type budget struct {
	bytes    int64
	mem      *semaphore.Weighted
	slots    chan struct{}
	wait     time.Duration
	inFlight atomic.Int32

	freeMu  sync.Mutex
	pending int64 // bytes released since the last return of memory
}

func newBudget(bytes int64, inFlight int, wait time.Duration) *budget {
	return &budget{bytes: bytes, mem: semaphore.NewWeighted(bytes), slots: make(chan struct{}, inFlight), wait: wait}
}

// errBusy refuses a request for now: the budget is in use by others.
func errBusy(wait time.Duration) error {
	return &server.Error{Status: http.StatusServiceUnavailable, RetryAfter: max(1, int(wait.Seconds())),
		Msg: "research requests are using the memory budget (reconcile.memory_budget); retry shortly"}
}

// acquire reserves the memory of a request loading receipts. It waits up to
// the budget's wait for room, then refuses with 503; a request needing more
// than the whole budget is refused with 400. The returned release must be
// called when the request's data is dropped.
func (b *budget) acquire(ctx context.Context, receipts int64) (func(), error) {
	need := requestBase + receipts*BytesPerReceipt
	if need > b.bytes {
		return nil, badRequest("the window holds %d receipts, which need about %d MiB, more than the %d MiB of reconcile.memory_budget; ask for a shorter window",
			receipts, need>>20, b.bytes>>20)
	}
	wctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	select {
	case b.slots <- struct{}{}:
	case <-wctx.Done():
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errBusy(b.wait)
	}
	if err := b.mem.Acquire(wctx, need); err != nil {
		<-b.slots
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errBusy(b.wait)
	}
	b.inFlight.Add(1)
	var once sync.Once
	return func() { once.Do(func() { b.release(need) }) }, nil
}

// release gives need back and, when no request is running any more and
// large ones ran since the last time, returns freed memory to the system.
func (b *budget) release(need int64) {
	b.mem.Release(need)
	<-b.slots
	last := b.inFlight.Add(-1) == 0
	b.freeMu.Lock()
	b.pending += need
	give := last && b.pending >= 64<<20
	if give {
		b.pending = 0
	}
	b.freeMu.Unlock()
	if give {
		go debug.FreeOSMemory()
	}
}
