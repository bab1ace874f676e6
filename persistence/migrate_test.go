package persistence_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/lnsync/lnsync/persistence"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

func TestMigrateTwiceIsANoOp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := persistencetest.NewDatabase(t)
	store, err := persistence.Open(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	logger := persistencetest.Logger(t)
	first, err := store.Migrate(ctx, logger)
	if err != nil {
		t.Fatal(err)
	}
	if first < 1 {
		t.Fatalf("first run applied %d migrations", first)
	}
	again, err := store.Migrate(ctx, logger)
	if err != nil || again != 0 {
		t.Fatalf("second run applied %d (err %v), want 0", again, err)
	}
	v, err := store.SchemaVersion(ctx)
	if err != nil || v != first {
		t.Errorf("schema version %d (err %v), want %d", v, err, first)
	}
	conn := openPool(t, url)
	for _, table := range []string{"peers", "peer_sessions", "channel_announcements", "channel_updates", "node_announcements", "receipts", "ingest_clock"} {
		if n := count(t, conn, "SELECT count(*) FROM pg_tables WHERE tablename = $1", table); n != 1 {
			t.Errorf("table %s missing after migration", table)
		}
	}
}

func TestConcurrentMigrationsApplyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := persistencetest.NewDatabase(t)
	results := make(chan int, 3)
	for range 3 {
		go func() {
			store, err := persistence.Open(ctx, url, 2)
			if err != nil {
				results <- -1
				return
			}
			defer store.Close()
			n, err := store.Migrate(ctx, persistencetest.Logger(t))
			if err != nil {
				n = -1
			}
			results <- n
		}()
	}
	total := 0
	for range 3 {
		n := <-results
		if n < 0 {
			t.Fatal("a concurrent migration failed")
		}
		total += n
	}
	conn := openPool(t, url)
	if applied := count(t, conn, "SELECT count(*) FROM schema_migrations"); int64(total) != applied {
		t.Errorf("runs reported %d applied, table has %d", total, applied)
	}
}

func TestMigrationNamesAreChecked(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		ok    bool
	}{
		{"numbered", map[string]string{"0001_a.sql": "", "0002_b.sql": "", "README": ""}, true},
		{"no number", map[string]string{"init.sql": ""}, false},
		{"zero", map[string]string{"0000_a.sql": ""}, false},
		{"duplicate version", map[string]string{"0001_a.sql": "", "1_b.sql": ""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, body := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(body)}
			}
			_, err := persistence.LoadMigrations(fsys)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
