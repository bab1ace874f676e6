package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lnsync/lnsync/bench/gen"
	"github.com/lnsync/lnsync/bench/loadpeer"
	"github.com/lnsync/lnsync/persistence/persistencetest"
	"github.com/lnsync/lnsync/snapshot"
)

// child starts the test binary as `lnsync args...` in this network
// namespace, its output going to log.
func child(t *testing.T, log io.Writer, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgs+"="+strings.Join(args, "\n"), childHostNet+"=1")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func loopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestChaos runs serve, fed by a gossip peer on loopback, under a steady
// mix of client requests while Postgres is killed and restarted twice and
// `lnsync snapshot` runs are SIGKILLed mid-run. Afterwards every message
// the peer sent is stored, every file of the published generation matches
// its manifest, serve answers each with the manifest's bytes, and no
// request was answered 500.
func TestChaos(t *testing.T) {
	t.Parallel()
	start := time.Now()
	dir := t.TempDir()
	// A fresh signed history: 60 channels over the last day, regtest.
	topo, err := gen.LoadTopology(context.Background(), filepath.Join("..", "..", "testdata"), "2024", false)
	if err != nil {
		t.Fatal(err)
	}
	sf, nf, err := gen.LoadFrequencies(filepath.Join("..", "..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	histStart := time.Now().Add(-25 * time.Hour).Unix()
	netw, err := gen.Build(topo, sf, nf, gen.Params{Seed: 9, Channels: 60, Days: 1, Start: histStart, Chain: gen.Chains["regtest"]})
	if err != nil {
		t.Fatal(err)
	}
	histDir := filepath.Join(dir, "history")
	man, err := gen.Generate(context.Background(), netw, histDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range man.Files {
		files = append(files, filepath.Join(histDir, f.Name))
	}
	want := int64(man.Totals.ChannelAnnouncements + man.Totals.ChannelUpdates + man.Totals.NodeAnnouncements)
	t.Logf("history: %d messages, generated in %v", want, time.Since(start).Round(time.Millisecond))

	peer, err := loadpeer.Listen(loadpeer.Config{Listen: "127.0.0.1:0", Files: files, Rate: float64(want) / 12, WaitForFilter: true,
		Logger: persistencetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	peerCtx, stopPeer := context.WithCancel(context.Background())
	defer stopPeer()
	go peer.Serve(peerCtx)

	cluster := persistencetest.StartCluster(t)
	dbURL := cluster.NewDatabase()
	snapDir := filepath.Join(dir, "snapshots")
	port := loopbackPort(t)
	pk := peer.PubKey()
	cfgPath := filepath.Join(dir, "lnsync.toml")
	cfgText := fmt.Sprintf("network = \"regtest\"\nshutdown_timeout = \"10s\"\n[database]\nurl = %q\n[download]\npeers = [%q]\n"+
		"backoff_min = \"200ms\"\nbackoff_max = \"1s\"\n[snapshot]\ndirectory = %q\n[http]\nlisten = \"127.0.0.1:%d\"\ndynamic_per_minute = 0\n",
		dbURL, hex.EncodeToString(pk[:])+"@"+peer.Addr(), snapDir, port)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex
	var logs strings.Builder
	logw := writerFunc(func(p []byte) (int, error) { logMu.Lock(); defer logMu.Unlock(); return logs.Write(p) })
	serve := child(t, logw, "serve", "-config", cfgPath)
	defer func() { serve.Process.Signal(syscall.SIGTERM); serve.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 30*time.Second, "serve to answer", func() bool {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	// The request mix: snapshots of every scope, dynamic deltas, status.
	stopMix := make(chan struct{})
	var mixWG sync.WaitGroup
	var requests, server500 atomic.Int64
	codes := sync.Map{}
	now := time.Now().Unix()
	paths := []string{"/snapshot/0", "/snapshot/v2/0", fmt.Sprint("/snapshot/", now-3*3600), fmt.Sprint("/snapshot/v2/", now-24*3600),
		fmt.Sprint("/dynamic/", now-9*3600), fmt.Sprint("/dynamic/v2/", now-15*3600), "/readyz", "/v1/status"}
	for w := range 2 {
		mixWG.Add(1)
		go func() {
			defer mixWG.Done()
			for i := w; ; i++ {
				select {
				case <-stopMix:
					return
				case <-time.After(10 * time.Millisecond):
				}
				resp, err := http.Get(base + paths[i%len(paths)])
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				requests.Add(1)
				n, _ := codes.LoadOrStore(resp.StatusCode, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				if resp.StatusCode == 500 {
					server500.Add(1)
				}
			}
		}()
	}

	// Two database outages, and snapshot runs killed mid-run in between.
	killed := 0
	snapshotRun := func(kill time.Duration) error {
		run := child(t, logw, "snapshot", "-config", cfgPath)
		if kill > 0 {
			time.Sleep(kill)
			if run.Process.Signal(syscall.SIGKILL) == nil {
				killed++
			}
		}
		return run.Wait()
	}
	// A first generation, which the killed runs must leave served.
	time.Sleep(time.Second)
	if err := snapshotRun(0); err != nil {
		logMu.Lock()
		t.Fatalf("first snapshot run: %v\n%s", err, logs.String())
	}
	time.Sleep(time.Second)
	cluster.Crash()
	time.Sleep(2 * time.Second)
	cluster.Start()
	for _, after := range []time.Duration{150 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		snapshotRun(after)
	}
	time.Sleep(time.Second)
	cluster.Crash()
	time.Sleep(2 * time.Second)
	cluster.Start()

	// Everything the peer sent reaches the database.
	store := persistencetest.OpenMigrated(t, dbURL)
	var stored int64
	waitFor(t, 40*time.Second, "every message stored", func() bool {
		c, err := store.Counts(context.Background())
		stored = c.ChannelAnnouncements + c.ChannelUpdates + c.NodeAnnouncements
		return err == nil && stored >= want
	})
	if err := snapshotRun(0); err != nil {
		logMu.Lock()
		t.Fatalf("final snapshot run: %v\n%s", err, logs.String())
	}
	close(stopMix)
	mixWG.Wait()

	// The published generation: every file as its manifest says.
	target, err := os.Readlink(filepath.Join(snapDir, snapshot.CurrentLink))
	if err != nil {
		t.Fatal(err)
	}
	genDir := filepath.Join(snapDir, snapshot.GenerationsDir, filepath.Base(target))
	m, err := snapshot.ReadManifest(genDir)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := 0
	for _, f := range m.Files {
		for _, c := range []struct{ name, sum string }{{f.Name, f.SHA256}, {f.Name + ".gz", f.GzipSHA256}} {
			b, err := os.ReadFile(filepath.Join(genDir, c.name))
			if sum := sha256.Sum256(b); err != nil || hex.EncodeToString(sum[:]) != c.sum {
				corrupt++
				t.Errorf("%s: does not match the manifest (%v)", c.name, err)
			}
		}
	}
	// serve answers each with the manifest's bytes, once it serves it.
	waitFor(t, 15*time.Second, "serve to serve the final generation", func() bool {
		resp, err := http.Get(base + "/v1/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			Snapshot *struct {
				Reference int64 `json:"reference"`
			} `json:"snapshot"`
		}
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Snapshot != nil && st.Snapshot.Reference == m.Reference
	})
	served := 0
	for _, f := range m.Files {
		path := fmt.Sprint("/snapshot/", f.Last)
		if f.Version == 2 {
			path = fmt.Sprint("/snapshot/v2/", f.Last)
		}
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if sum := sha256.Sum256(b); resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s (%s): %d, bytes differ from the manifest's %s", path, f.Name, resp.StatusCode, f.Name)
			continue
		}
		served++
	}
	counts := map[int]int64{}
	codes.Range(func(k, v any) bool { counts[k.(int)] = v.(*atomic.Int64).Load(); return true })
	t.Logf("chaos: %v; %d messages sent, %d stored (want %d); %d snapshot runs killed; %d files in the final generation, %d corrupt, %d served with the manifest's bytes; %d requests: %v",
		time.Since(start).Round(time.Millisecond), peer.Stats().Sent, stored, want, killed, 2*len(m.Files), corrupt, served, requests.Load(), counts)
	if stored != want {
		t.Errorf("%d messages stored, want the %d sent", stored, want)
	}
	if server500.Load() > 0 {
		logMu.Lock()
		t.Errorf("%d requests answered 500 during the chaos\n%s", server500.Load(), logs.String())
		logMu.Unlock()
	}
	if killed < 3 {
		t.Errorf("only %d snapshot runs killed", killed)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
