package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// syncBuffer is a bytes.Buffer that a command may write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// `lnsync migrate` started before its database waits for it, as serve does:
// a compose file or a boot script may start both at once.
func TestMigrateWaitsForDatabase(t *testing.T) {
	t.Parallel()
	cluster := persistencetest.StartCluster(t)
	dbURL := cluster.NewDatabase()
	cluster.Stop()
	cfgPath := filepath.Join(t.TempDir(), "lnsync.toml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("[database]\nurl = %q\n", dbURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- cmdMigrate(context.Background(), []string{"-config", cfgPath}, &stdout, &stderr) }()

	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "database not reachable yet; retrying") {
		select {
		case err := <-done:
			t.Fatalf("migrate gave up at once while the database was down: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("migrate neither waited nor failed:\n%s", stderr.String())
		}
	}
	cluster.Start()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("migrate after the database came up: %v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("migrate did not finish within a minute of the database coming up")
	}
	if !strings.Contains(stdout.String(), "schema version") {
		t.Errorf("stdout %q", stdout.String())
	}

	// A malformed URL is a mistake, not an outage: no waiting.
	if err := os.WriteFile(cfgPath, []byte("[database]\nurl = \"postgres://[::1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmdMigrate(context.Background(), []string{"-config", cfgPath}, &stdout, &stderr); err == nil {
		t.Error("migrate with a malformed URL succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("migrate with a malformed URL took %s, want an immediate error", d)
	}
}

// Without -config and without ./config.toml, the defaults and the LNSYNC_*
// variables are the whole configuration; a named file must exist.
func TestEnvironmentOnlyConfiguration(t *testing.T) {
	t.Chdir(t.TempDir()) // no config.toml here
	t.Setenv("LNSYNC_DATABASE_URL", persistencetest.NewDatabase(t))
	var stdout, stderr bytes.Buffer
	if err := cmdMigrate(context.Background(), nil, &stdout, &stderr); err != nil {
		t.Fatalf("migrate configured by the environment: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "schema version") {
		t.Errorf("stdout %q", stdout.String())
	}
	err := cmdMigrate(context.Background(), []string{"-config", "missing.toml"}, &stdout, &stderr)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("migrate -config missing.toml: %v, want a missing-file error", err)
	}
}

// serve refuses a snapshot folder it cannot write, at once and by name,
// before it touches the database.
func TestServeChecksSnapshotDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{file, filepath.Join(file, "below")} {
		cfgPath := filepath.Join(t.TempDir(), "lnsync.toml")
		text := fmt.Sprintf("[database]\nurl = \"postgres://127.0.0.1:1/none\"\n[download]\npeers = []\n[snapshot]\ndirectory = %q\n", bad)
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr syncBuffer
		start := time.Now()
		err := cmdServe(context.Background(), []string{"-config", cfgPath}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "snapshot.directory") || !strings.Contains(err.Error(), bad) {
			t.Errorf("serve with snapshot directory %s: %v", bad, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("serve took %s to refuse %s; the database must not be waited for", d, bad)
		}
	}
}
