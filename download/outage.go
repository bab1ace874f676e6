package download

import (
	"log/slog"
	"sync"
)

// outage logs a repeated failure once when it starts and once when it ends,
// with how many times it happened, instead of once per occurrence.
type outage struct {
	mu     sync.Mutex
	failed int // failures since the last success; 0 while all is well
}

// Report records the outcome of one attempt: a nil err ends an outage, a
// non-nil one starts or continues it.
func (o *outage) Report(logger *slog.Logger, msg string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err != nil && o.failed == 0:
		o.failed = 1
		logger.Warn(msg, "err", err)
	case err != nil:
		o.failed++
	case o.failed > 0:
		logger.Info("recovered: "+msg, "failures", o.failed)
		o.failed = 0
	}
}
