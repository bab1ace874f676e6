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
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
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

	"github.com/lnsync/lnsync/migrations"
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
	return createDatabaseFrom(t, admin, "")
}

// createDatabaseFrom creates a database, a copy of tmpl unless tmpl is
// empty, and drops it when the test ends.
func createDatabaseFrom(t testing.TB, admin, tmpl string) string {
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
	create := "CREATE DATABASE " + name
	if tmpl != "" {
		create += " TEMPLATE " + tmpl
	}
	if _, err := conn.Exec(ctx, create); err != nil {
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
	return OpenMigrated(t, NewMigratedDatabase(t))
}

// NewMigratedDatabase creates a database holding the current schema and no
// rows, drops it when the test ends and returns its URL. It is a copy of a
// template that is migrated once per cluster and schema (CREATE DATABASE …
// TEMPLATE), which costs a fraction of running the migrations per test.
func NewMigratedDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	tmpl, err := template(admin)
	if err != nil {
		t.Fatalf("migrated template: %v", err)
	}
	return createDatabaseFrom(t, admin, tmpl)
}

// templatePrefix starts the name of every template database; the rest is a
// hash of the migrations, so a schema change makes a new template.
const templatePrefix = "lnsync_template_"

// templateLockKey serialises template creation among the test processes
// that go test runs in parallel.
const templateLockKey = 0x6c6e73796e6374 // "lnsynct"

// template returns the name of the migrated template database of the
// current schema, creating it if no test process has yet.
func template(admin string) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	name := templatePrefix + hex.EncodeToString(h.Sum(nil))[:16]

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect to test cluster: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(templateLockKey)); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	// Closing the connection releases the lock.
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look up template: %w", err)
	}
	if exists {
		return name, nil
	}
	// Build under a temporary name and rename when complete, so that a
	// process killed half-way never leaves a template that looks finished.
	building := name + "_building"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop stale template: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", EnvURL, err)
	}
	u.Path = "/" + building
	store, err := persistence.Open(ctx, u.String(), 2)
	if err != nil {
		return "", fmt.Errorf("open template: %w", err)
	}
	_, err = store.Migrate(ctx, slog.New(slog.DiscardHandler))
	store.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
		return "", fmt.Errorf("rename template: %w", err)
	}
	// Templates of other schemas are of no further use.
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> $2",
		templatePrefix+"%", name)
	if err != nil {
		return "", fmt.Errorf("list templates: %w", err)
	}
	old, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("list templates: %w", err)
	}
	for _, o := range old {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{o}.Sanitize()+" WITH (FORCE)")
	}
	return name, nil
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
