package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lnsync/lnsync/gsp"
	"github.com/lnsync/lnsync/gsp/gsptest"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// An import interrupted while its database is down ends within
// shutdown_timeout, says how many records it could not write and how to
// complete the data, and logs the loss once rather than per batch.
func TestImportStopsWithinDeadlineWhileDatabaseIsDown(t *testing.T) {
	t.Parallel()
	cluster := persistencetest.StartCluster(t)
	dbURL := cluster.NewDatabase()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "lnsync.toml")
	const timeout = 4 * time.Second
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("shutdown_timeout = %q\n[database]\nurl = %q\nwrite_batch = 100\n", "4s", dbURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The import reads a named pipe, so the test decides when its input
	// arrives: half before the database goes down, half after.
	fifo := filepath.Join(dir, "gossip.gsp")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	msgs := gsptest.Messages(t, filepath.Join("..", "..", "testdata", "lnresearch-gsp-2025", "lnresearch-2025-merged.gsp"))
	frame := func(part [][]byte) []byte {
		var buf bytes.Buffer
		w := gsp.NewWriter(&buf)
		for _, m := range part {
			if err := w.Write(m, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	first, second := frame(msgs[:len(msgs)/2]), frame(msgs[len(msgs)/2:])[4:] // one header only

	// `lnsync import` as its own process, stopped with SIGTERM as an
	// operator or a service manager would.
	var stderr syncBuffer
	imp := child(t, &stderr, "import", "-config", cfgPath, fifo)
	done := make(chan error, 1)
	go func() { done <- imp.Wait() }()
	pipe, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	if _, err := pipe.Write(first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	cluster.Crash()
	if _, err := pipe.Write(second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the writer now retries batches against a dead server
	start := time.Now()
	if err := imp.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(3 * timeout):
		t.Fatalf("import still running %v after SIGTERM with the database down\n%s", 3*timeout, stderr.String())
	}
	took := time.Since(start)
	t.Logf("stopped in %v", took.Round(time.Millisecond))
	// The watchdog ends the process at the deadline at the latest; allow
	// for the signal's delivery and the exit on a loaded machine.
	if took > timeout+time.Second {
		t.Errorf("import took %v to stop, want at most shutdown_timeout (%v)", took, timeout)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit %v, want status 1", err)
	}
	out := stderr.String()
	if !strings.Contains(out, "run the same `lnsync import` again") || !strings.Contains(out, "records not written") {
		t.Errorf("no message saying how many records were not written and to run the import again:\n%s", out)
	}
	if n := strings.Count(out, "records not written: the database was unavailable"); n != 1 {
		t.Errorf("the loss is logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "batch failed, retrying"); n > 12 {
		t.Errorf("%d retry lines for one outage, want a few", n)
	}
	if n := strings.Count(out, "could not be read"); n > 1 {
		t.Errorf("the waiting room's outage is logged %d times, want once", n)
	}

	// Running the import again once the database is back completes the data.
	cluster.Start()
	whole := filepath.Join(dir, "whole.gsp")
	if err := os.WriteFile(whole, frame(msgs), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout syncBuffer
	if err := cmdImport(context.Background(), []string{"-config", cfgPath, whole}, &stdout, &stderr); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	store := persistencetest.OpenMigrated(t, dbURL)
	updates, nodes, err := store.CountWaiting(context.Background())
	if err != nil || updates != 26462 || nodes != 2171 {
		t.Errorf("after the rerun %d updates and %d node announcements wait (%v); want 26462 and 2171 as after one clean import", updates, nodes, err)
	}
}

// serve interrupted while its database is down also stops within
// shutdown_timeout.
func TestServeStopsWithinDeadlineWhileDatabaseIsDown(t *testing.T) {
	t.Parallel()
	cluster := persistencetest.StartCluster(t)
	dbURL := cluster.NewDatabase()
	cfgPath := serveConfig(t, dbURL, `shutdown_timeout = "4s"`)
	// serve as its own process, stopped with SIGTERM.
	var stderr syncBuffer
	serve := child(t, &stderr, "serve", "-config", cfgPath)
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	waitFor(t, 30*time.Second, "serve to start", func() bool { return strings.Contains(stderr.String(), "listening") })
	cluster.Crash()
	time.Sleep(time.Second)
	start := time.Now()
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(12 * time.Second):
		t.Fatalf("serve still running 12s after SIGTERM with the database down:\n%s", stderr.String())
	}
	// The watchdog ends the process at the deadline at the latest; allow
	// for the signal's delivery and the exit on a loaded machine.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("serve took %v to stop, want at most shutdown_timeout (4s)\n%s", took, stderr.String())
	} else {
		t.Logf("stopped in %v", took.Round(time.Millisecond))
	}
	cluster.Start()
}

// While the database is down, the routes that need it answer 503 with
// Retry-After and say why, and 1,000 such requests make one log line (and
// one more when the database is back), not one each.
func TestServeOutageIs503AndLoggedOnce(t *testing.T) {
	t.Parallel()
	cluster := persistencetest.StartCluster(t)
	dbURL := cluster.NewDatabase()
	cfgPath := serveConfig(t, dbURL, "")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- cmdServe(ctx, []string{"-config", cfgPath}, &stdout, &stderr) }()
	defer func() { cancel(); <-done }()
	addr := ""
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		if _, after, ok := strings.Cut(stderr.String(), `msg=listening component=http addr=`); ok {
			addr, _, _ = strings.Cut(after, "\n")
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	now := time.Now().UTC().Truncate(time.Hour)
	url := fmt.Sprintf("http://%s/v1/reconciliation/metrics?from=%s&to=%s", addr, now.Add(-time.Hour).Format(time.RFC3339), now.Format(time.RFC3339))
	get := func() (int, string, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(body)
	}
	if code, _, body := get(); code != http.StatusOK {
		t.Fatalf("before the outage: %d %s", code, body)
	}
	cluster.Crash()
	// What the HTTP server logs: other components (the snapshot scheduler,
	// the aggregation job) keep their own lines.
	httpLines := func() int { return strings.Count(stderr.String(), "component=http") }
	linesBefore := httpLines()
	for i := range 1000 {
		code, retry, body := get()
		if code != http.StatusServiceUnavailable || retry == "" || !strings.Contains(body, "database unavailable") {
			t.Fatalf("request %d during the outage: %d, Retry-After %q, %q; want 503 with Retry-After and the reason\n%s", i, code, retry, body, stderr.String())
		}
	}
	outageLines := httpLines() - linesBefore
	if outageLines > 2 {
		t.Errorf("1,000 requests during the outage wrote %d log lines, want at most 2:\n%s", outageLines, stderr.String())
	}
	cluster.Start()
	deadline = time.Now().Add(30 * time.Second)
	for {
		if code, _, _ := get(); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 200 within 30s of the database coming back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The end is logged as the first good answer is finished.
	for end := time.Now().Add(5 * time.Second); !strings.Contains(stderr.String(), "service available again") && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), "service available again") {
		t.Errorf("the end of the outage is not logged:\n%s", stderr.String())
	}
	t.Logf("1,000 requests during the outage: %d log lines", outageLines)
}

// serveConfig writes the configuration of a regtest serve without peers on
// dbURL, listening on a free loopback port, with top (top-level settings)
// first, and returns its path.
func serveConfig(t *testing.T, dbURL, top string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lnsync.toml")
	text := fmt.Sprintf("%s\nnetwork = \"regtest\"\n[database]\nurl = %q\n[download]\npeers = []\n[snapshot]\ndirectory = %q\n[http]\nlisten = \"127.0.0.1:0\"\n",
		top, dbURL, filepath.Join(t.TempDir(), "snapshots"))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
