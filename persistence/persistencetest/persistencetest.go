// Package persistencetest gives tests real Postgres databases: a fresh,
// migrated database per test in the cluster that `make test` starts, and
// private clusters that a test may stop and restart.
//
// Nothing here is a mock: every helper talks to a real server, and a missing
// server fails the test with instructions instead of skipping it.
package persistencetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lnsync/lnsync/persistence"
)

// EnvURL names the environment variable holding a superuser URL of the test
// cluster; `make test` sets it.
const EnvURL = "LNSYNC_TEST_DATABASE_URL"

// AdminURL returns the test cluster's superuser URL or fails the test.
func AdminURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Fatalf("%s is not set: run the tests with `make test`, which starts Postgres", EnvURL)
	}
	return u
}

// NewDatabase creates an empty database in the test cluster, drops it when
// the test ends and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return createDatabase(t, AdminURL(t))
}

func createDatabase(t testing.TB, admin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to test cluster: %v", err)
	}
	defer conn.Close(ctx)
	buf := make([]byte, 6)
	_, _ = rand.Read(buf)
	name := "lnsync_test_" + hex.EncodeToString(buf)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewStore opens a fresh, migrated database and closes it when the test ends.
func NewStore(t testing.TB) *persistence.Store {
	t.Helper()
	return OpenMigrated(t, NewDatabase(t))
}

// OpenMigrated opens dbURL, applies the migrations and closes the store when
// the test ends.
func OpenMigrated(t testing.TB, dbURL string) *persistence.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := persistence.Open(ctx, dbURL, 8)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(store.Close)
	if _, err := store.Migrate(ctx, Logger(t)); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	return store
}

// Logger returns a logger writing to the test log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// Cluster is a private Postgres server owned by one test, on a free loopback
// port, that the test can stop and start again.
type Cluster struct {
	t      testing.TB
	bindir string
	data   string
	port   int
}

// StartCluster initialises and starts a private cluster, stopped and removed
// when the test ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bindir, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.MkdirTemp("", "lnsync-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	// The server runs as "postgres" when the tests run as root: it must reach the directory.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, bindir: bindir, data: filepath.Join(root, "data"), port: freePort(t)}
	if err := os.Mkdir(c.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := chownToOwner(root, c.data); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop")
		_ = os.RemoveAll(root)
	})
	if err := c.run("initdb", "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		t.Fatalf("initdb: %v", err)
	}
	c.Start()
	return c
}

// URL returns a superuser URL for the cluster's postgres database.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// NewDatabase creates an empty database in the cluster and returns its URL.
func (c *Cluster) NewDatabase() string {
	c.t.Helper()
	return createDatabase(c.t, c.URL())
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=on", c.port, c.data)
	if err := c.run("pg_ctl", "-D", c.data, "-l", filepath.Join(c.data, "server.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		logTail, _ := os.ReadFile(filepath.Join(c.data, "server.log"))
		c.t.Fatalf("start postgres: %v\n%s", err, logTail)
	}
}

// Stop shuts the server down in fast mode, disconnecting every client;
// committed data survives.
func (c *Cluster) Stop() {
	c.t.Helper()
	if err := c.run("pg_ctl", "-D", c.data, "-m", "fast", "-w", "stop"); err != nil {
		c.t.Fatalf("stop postgres: %v", err)
	}
}

// Crash kills the server without a checkpoint, as a power cut would; committed
// data survives through WAL recovery.
func (c *Cluster) Crash() {
	c.t.Helper()
	if err := c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop"); err != nil {
		c.t.Fatalf("crash postgres: %v", err)
	}
}

func (c *Cluster) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bindir, name), args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(c.bindir, name)}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, out)
	}
	return nil
}

// BinDir finds the PostgreSQL server binaries: LNSYNC_PG_BINDIR, else the
// newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	if d := os.Getenv("LNSYNC_PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries found: run `make test`, which installs them")
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

func chownToOwner(paths ...string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("look up user postgres: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
