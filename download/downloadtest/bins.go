package downloadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BinEnv is the environment variable naming a directory that holds prebuilt
// btcd, lnd and lncli binaries. When it is unset the harness runs
// scripts/regtest-bins.sh, which builds them into a cache keyed by version.
const BinEnv = "LNSYNC_REGTEST_BIN"

// buildTimeout bounds a cold build of lnd and btcd on a slow machine.
const buildTimeout = 30 * time.Minute

var binaries = []string{"btcd", "lnd", "lncli"}

// findBinaries returns the directory holding btcd, lnd and lncli, building
// them with scripts/regtest-bins.sh when BinEnv is unset.
func findBinaries(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(BinEnv)
	if dir == "" {
		var err error
		dir, err = buildBinaries(t)
		if err != nil {
			t.Fatalf("downloadtest: regtest binaries: %v", err)
		}
	}
	for _, name := range binaries {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatalf("downloadtest: regtest binary %s: %v (set %s to a directory holding btcd, lnd and lncli, or unset it to build them with scripts/regtest-bins.sh)", name, err, BinEnv)
		}
		if info.Mode()&0o111 == 0 {
			t.Fatalf("downloadtest: regtest binary %s is not executable", path)
		}
	}
	return dir
}

// buildBinaries runs scripts/regtest-bins.sh from the repository root and
// returns the directory it prints last. The script is a no-op taking well under
// a second when the binaries are already cached, and it serialises concurrent
// builds with a lock, so parallel test packages share one build.
func buildBinaries(t testing.TB) (string, error) {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "scripts", "regtest-bins.sh")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if deadline, ok := testDeadline(t); ok {
		// Fail with a clear message rather than a test timeout panic.
		var cancelDeadline context.CancelFunc
		ctx, cancelDeadline = context.WithDeadline(ctx, deadline.Add(-time.Minute))
		defer cancelDeadline()
	}

	start := time.Now()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	cmd.Stdout = &stdout
	// A cold build takes minutes: show the script's progress as it goes.
	cmd.Stderr = &progressWriter{t: t, buf: &stderr}
	// Run the script in its own process group so that cancelling stops the
	// go build it started too. Compiled packages stay in the Go build cache,
	// so the next run resumes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s did not finish in time (%v); run it once before the tests or raise go test -timeout\n%s", script, ctx.Err(), tail(stderr.Bytes(), 20))
		}
		return "", fmt.Errorf("%s: %w\n%s", script, err, tail(stderr.Bytes(), 40))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", fmt.Errorf("%s printed no directory", script)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Logf("downloadtest: built regtest binaries into %s in %s", dir, d.Round(time.Second))
	}
	return dir, nil
}

// repoRoot walks up from the working directory (the package directory under
// go test) to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find repository root: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no go.mod above the working directory (set %s instead)", BinEnv)
		}
		dir = parent
	}
}

// testDeadline returns the deadline of the test binary (go test -timeout),
// if t knows it.
func testDeadline(t testing.TB) (time.Time, bool) {
	d, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return time.Time{}, false
	}
	return d.Deadline()
}

// progressWriter keeps everything written to it in buf and logs the script's
// own progress lines (not the go command's download chatter) as they come.
type progressWriter struct {
	t       testing.TB
	buf     *bytes.Buffer
	partial []byte
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		if line := string(w.partial[:i]); strings.HasPrefix(line, "regtest-bins:") {
			w.t.Log(line)
		}
		w.partial = w.partial[i+1:]
	}
}
