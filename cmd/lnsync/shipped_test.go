package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/persistence/persistencetest"
)

// childArgs, when set in the environment, makes the test binary run lnsync
// with these arguments (one per line) instead of the tests: the way
// TestServeWithShippedConfig starts serve in a network namespace of its own.
const childArgs = "LNSYNC_TEST_CHILD_ARGS"

// childHostNet, when set, tells a child that it shares the host's network
// namespace (its loopback is up already).
const childHostNet = "LNSYNC_TEST_CHILD_HOSTNET"

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgs); args != "" {
		os.Exit(runChild(strings.Split(args, "\n")))
	}
	// The tests configure lnsync through files and their own variables; a
	// developer's LNSYNC_* overrides must not reach them.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "LNSYNC_") && !strings.HasPrefix(name, "LNSYNC_TEST_") &&
			name != "LNSYNC_PG_BINDIR" && name != "LNSYNC_REGTEST_BIN" {
			os.Unsetenv(name)
		}
	}
	os.Exit(m.Run())
}

// runChild brings up the loopback interface of the fresh network namespace
// it was started in, then runs lnsync as main does.
func runChild(args []string) int {
	if os.Getenv(childHostNet) == "" {
		if err := loopbackUp(); err != nil {
			os.Stderr.WriteString("child: loopback up: " + err.Error() + "\n")
			return 3
		}
	}
	return runMain(args, os.Stdout, os.Stderr)
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// TestServeWithShippedConfig runs `lnsync serve` with the repository's
// config.toml, as `make run` does, in a network namespace that has only a
// loopback interface: the seed peers' dials fail at once ("network is
// unreachable") and nothing leaves the machine. Postgres is reached through
// its Unix socket. Each seed is dialled and its failure logged once as a
// warning; the retries that follow are debug lines, not a flood.
func TestServeWithShippedConfig(t *testing.T) {
	t.Parallel()
	dbURL := unixSocketURL(t, persistencetest.NewMigratedDatabase(t))
	configPath, err := filepath.Abs(filepath.Join("..", "..", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childArgs+"=serve\n-config\n"+configPath,
		"LNSYNC_DATABASE_URL="+dbURL,
		"LNSYNC_SNAPSHOT_DIR="+t.TempDir(),
		"LNSYNC_HTTP_LISTEN=127.0.0.1:0",
		"LNSYNC_LOG_FORMAT=json",
		"LNSYNC_LOG_LEVEL=debug",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		// An unprivileged user gets a network namespace inside a user namespace.
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Geteuid(), HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getegid(), HostID: os.Getegid(), Size: 1}}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve in a network namespace: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	type line struct {
		Level string  `json:"level"`
		Msg   string  `json:"msg"`
		Peer  string  `json:"peer"`
		Err   string  `json:"err"`
		Peers float64 `json:"peers"`
	}
	var mu sync.Mutex
	var lines []line
	var raw []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				l = line{Level: "?", Msg: sc.Text()}
			}
			mu.Lock()
			lines, raw = append(lines, l), append(raw, sc.Text())
			mu.Unlock()
		}
	}()
	snapshot := func() []line {
		mu.Lock()
		defer mu.Unlock()
		return append([]line(nil), lines...)
	}
	dump := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(raw, "\n")
	}
	count := func(ls []line, level, msg string) map[string]int {
		n := map[string]int{}
		for _, l := range ls {
			if l.Level == level && l.Msg == msg {
				n[l.Peer]++
			}
		}
		return n
	}

	// Every seed is dialled, fails, and is retried at least once (backoff_min
	// is 5s, so the first retry comes within 5s).
	seeds := config.MainnetSeeds
	deadline := time.Now().Add(40 * time.Second)
	for {
		ls := snapshot()
		warned, retried := count(ls, "WARN", "peer unreachable; retrying with backoff"), count(ls, "DEBUG", "peer still unreachable")
		all := true
		for _, s := range seeds {
			if warned[s] == 0 || retried[s] == 0 {
				all = false
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every seed was dialled and retried within 40s (warned %v, retried %v):\n%s", warned, retried, dump())
		}
		select {
		case <-done:
			t.Fatalf("serve exited early:\n%s", dump())
		case <-time.After(100 * time.Millisecond):
		}
	}

	ls := snapshot()
	var started bool
	for _, l := range ls {
		if l.Msg == "starting lnsync" {
			started = true
			if int(l.Peers) != len(seeds) {
				t.Errorf("serve started with %v peers, want the %d seeds", l.Peers, len(seeds))
			}
		}
		if l.Msg == "no peers configured (download.peers is empty): nothing will be collected; snapshots hold only gossip already stored or imported" {
			t.Errorf("the shipped config says it has no peers")
		}
		if l.Msg == "peer unreachable; retrying with backoff" && !strings.Contains(l.Err, "network is unreachable") {
			t.Errorf("peer %s failed with %q; in a namespace without routes it must be unreachable at once", l.Peer, l.Err)
		}
	}
	if !started {
		t.Errorf("no start-up line")
	}
	// What an operator sees at the default level: one warning per seed.
	for peer, n := range count(ls, "WARN", "peer unreachable; retrying with backoff") {
		if n != 1 {
			t.Errorf("peer %s: %d unreachable warnings, want 1 however often it is retried", peer, n)
		}
	}
	var loud int
	for _, l := range ls {
		if l.Level != "DEBUG" {
			loud++
		}
	}
	if loud > 3*len(seeds)+15 {
		t.Errorf("%d lines at info level or above in the first seconds:\n%s", loud, dump())
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { <-done; exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM:\n%s", err, dump())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("serve did not exit within 30s of SIGTERM")
	}
}

// unixSocketURL turns a test database URL into one that reaches the same
// server through its Unix socket, which a process in another network
// namespace shares.
func unixSocketURL(t *testing.T, dbURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var dirs string
	if err := conn.QueryRow(ctx, "SHOW unix_socket_directories").Scan(&dirs); err != nil {
		t.Fatal(err)
	}
	dir := strings.TrimSpace(strings.Split(dirs, ",")[0])
	if dir == "" {
		t.Fatal("the test cluster listens on no Unix socket")
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("host", dir)
	q.Set("port", u.Port())
	u.RawQuery = q.Encode()
	u.Host = ""
	return u.String()
}
