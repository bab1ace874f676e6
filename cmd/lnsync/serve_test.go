package main

import (
	"testing"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/reconcile"
)

// The [reconcile] defaults documented in config.toml are the ones the
// reconcile package applies itself.
func TestReconcileConfigDefaults(t *testing.T) {
	cfg := config.Default()
	got := reconcileConfig(cfg)
	want := reconcile.DefaultConfig()
	want.Backfill = cfg.Retention.Receipts.Std()
	// Not configurable: New fills them in.
	got.Settle, got.HourTimeout, got.AdmissionWait = want.Settle, want.HourTimeout, want.AdmissionWait
	if got != want {
		t.Errorf("reconcile config from the default [reconcile] section:\n got %+v\nwant %+v", got, want)
	}
}
