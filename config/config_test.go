package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const validPeer = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798@127.0.0.1:9735"

func noEnv(string) string { return "" }

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExampleConfigIsTheDefault(t *testing.T) {
	cfg, err := Load("../config.toml", noEnv)
	if err != nil {
		t.Fatalf("load example config: %v", err)
	}
	want := Default()
	want.Download.Peers = MainnetSeeds
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("example config differs from defaults:\n got %+v\nwant %+v", cfg, want)
	}
	bare, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(bare, cfg) {
		t.Errorf("no config file differs from the example config:\n got %+v\nwant %+v", bare, cfg)
	}
}

// The seeds apply when a file leaves peers out, on mainnet only; an empty
// list is kept as the choice it is.
func TestDefaultPeers(t *testing.T) {
	tests := []struct {
		name, text string
		env        map[string]string
		want       []string
	}{
		{"no file section", ``, nil, MainnetSeeds},
		{"bitcoin alias", `network = "bitcoin"`, nil, MainnetSeeds},
		{"download without peers", "[download]\nfull_sync_peers = 2", nil, MainnetSeeds},
		{"explicit empty", "[download]\npeers = []", nil, []string{}},
		{"regtest", `network = "regtest"`, nil, []string{}},
		{"signet by environment", ``, map[string]string{"LNSYNC_NETWORK": "signet"}, []string{}},
		{"own list", "[download]\npeers = [\"" + validPeer + "\"]", nil, []string{validPeer}},
		{"environment list", ``, map[string]string{"LNSYNC_PEERS": validPeer}, []string{validPeer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(writeConfig(t, tt.text), func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Download.Peers, tt.want) {
				t.Errorf("peers %q, want %q", cfg.Download.Peers, tt.want)
			}
		})
	}
	// A mainnet seed on another network is a mistake, named as such.
	_, err := Load(writeConfig(t, "network = \"signet\"\n[download]\npeers = [\""+MainnetSeeds[1]+"\"]"), noEnv)
	var cerr *Error
	if !errors.As(err, &cerr) || cerr.Key != "download.peers[0]" || !strings.Contains(cerr.Msg, "mainnet seed") {
		t.Errorf("mainnet seed on signet: %v", err)
	}
	// Every seed is a valid peer of a distinct node.
	seen := map[string]bool{}
	for _, s := range MainnetSeeds {
		p, err := ParsePeer(s)
		if err != nil {
			t.Errorf("seed %s: %v", s, err)
			continue
		}
		if seen[string(p.PubKey[:])] {
			t.Errorf("seed %s: node listed twice", s)
		}
		seen[string(p.PubKey[:])] = true
	}
}

func TestLoadValid(t *testing.T) {
	path := writeConfig(t, `
network = "regtest"
log_format = "json"
[database]
url = "postgres://x@127.0.0.1:1/db"
[download]
peers = ["`+validPeer+`", "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619@[::1]:9735"]
full_sync_peers = 2
recent_window = "30m"
pending_timeout = "1m"
bitcoind_rest = "http://127.0.0.1:8332/rest"
[snapshot]
interval = "6h"
[retention]
history = "70d"
[reconcile]
max_raw_window = "3h"
max_window = "60d"
max_receipts = 1000
max_rounds = 50
max_verify_rounds = 50
aggregate_every = "1m"
keep_aggregates = "90d"
`)
	cfg, err := Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Download; d.FullSyncPeers != 2 || d.RecentWindow.Std() != 30*time.Minute || d.PendingTimeout.Std() != time.Minute ||
		d.GarbageLimit != 100 || d.BackoffMax.Std() != 5*time.Minute || d.BitcoindREST != "http://127.0.0.1:8332/rest" {
		t.Errorf("download section: %+v", d)
	}
	if cfg.Network != "regtest" || cfg.Snapshot.Interval.Std() != 6*time.Hour || cfg.Retention.History.Std() != 70*24*time.Hour {
		t.Errorf("unexpected values: %+v", cfg)
	}
	wantReconcile := Reconcile{MaxRawWindow: Duration(3 * time.Hour), MaxWindow: Duration(60 * 24 * time.Hour),
		MaxEstimateWindow: Duration(24 * time.Hour), MaxReceipts: 1000, MaxRounds: 50, MaxVerifyRounds: 50,
		AggregateEvery: Duration(time.Minute), KeepAggregates: Duration(90 * 24 * time.Hour), MemoryBudgetMiB: 512, MaxInFlight: 4}
	if cfg.Reconcile != wantReconcile {
		t.Errorf("reconcile section = %+v, want %+v", cfg.Reconcile, wantReconcile)
	}
	peers := cfg.Peers()
	if len(peers) != 2 || peers[1].Addr != "[::1]:9735" || peers[0].String() != validPeer {
		t.Errorf("peers = %v", peers)
	}
	if h := cfg.ChainHash(); h[0] != 0x06 || h[31] != 0x0f {
		t.Errorf("regtest chain hash = %x", h)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	path := writeConfig(t, "network = \"mainnet\"\n[database]\nurl = \"postgres://file\"\n")
	env := map[string]string{
		"LNSYNC_DATABASE_URL":      "postgres://env",
		"LNSYNC_NETWORK":           "signet",
		"LNSYNC_PEERS":             " " + validPeer + " ,, ",
		"LNSYNC_SNAPSHOT_INTERVAL": "1d",
		"LNSYNC_HTTP_LISTEN":       "127.0.0.1:9999",
	}
	cfg, err := Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.URL != "postgres://env" || cfg.Network != "signet" || cfg.HTTP.Listen != "127.0.0.1:9999" {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	if len(cfg.Download.Peers) != 1 || cfg.Snapshot.Interval.Std() != 24*time.Hour {
		t.Errorf("peers %v interval %v", cfg.Download.Peers, cfg.Snapshot.Interval)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		env     map[string]string
		wantKey string
		wantVal string
	}{
		{"unknown top-level key", `netwrok = "mainnet"`, nil, "netwrok", ""},
		{"unknown nested key", "[snapshot]\nintervall = \"3h\"", nil, "snapshot.intervall", ""},
		{"unknown section", "[bogus]\nx = 1", nil, "bogus", ""},
		{"bad network", `network = "litecoin"`, nil, "network", "litecoin"},
		{"bad log level", `log_level = "loud"`, nil, "log_level", "loud"},
		{"bad log format", `log_format = "xml"`, nil, "log_format", "xml"},
		{"peer without @", "[download]\npeers = [\"nothing\"]", nil, "download.peers[0]", "nothing"},
		{"peer short key", "[download]\npeers = [\"0211@h:1\"]", nil, "download.peers[0]", "0211@h:1"},
		{"peer not on curve", "[download]\npeers = [\"02" + strings.Repeat("ff", 32) + "@h:1\"]", nil, "download.peers[0]", ""},
		{"peer without port", "[download]\npeers = [\"" + strings.Split(validPeer, "@")[0] + "@host\"]", nil, "download.peers[0]", ""},
		{"peer bad port", "[download]\npeers = [\"" + strings.Split(validPeer, "@")[0] + "@host:70000\"]", nil, "download.peers[0]", ""},
		{"second peer bad", "[download]\npeers = [\"" + validPeer + "\", \"x@y\"]", nil, "download.peers[1]", "x@y"},
		{"full sync peers", "[download]\nfull_sync_peers = 0", nil, "download.full_sync_peers", "0"},
		{"recent window short", "[download]\nrecent_window = \"10s\"", nil, "download.recent_window", "10s"},
		{"recent window long", "[download]\nrecent_window = \"15d\"", nil, "download.recent_window", "15d"},
		{"backoff min zero", "[download]\nbackoff_min = \"0s\"", nil, "download.backoff_min", "0s"},
		{"backoff max below min", "[download]\nbackoff_min = \"1m\"\nbackoff_max = \"30s\"", nil, "download.backoff_max", "30s"},
		{"garbage limit", "[download]\ngarbage_limit = 0", nil, "download.garbage_limit", "0"},
		{"pending max", "[download]\npending_max = -1", nil, "download.pending_max", "-1"},
		{"pending timeout", "[download]\npending_timeout = \"0s\"", nil, "download.pending_timeout", "0s"},
		{"bitcoind rest not a url", "[download]\nbitcoind_rest = \"127.0.0.1:8332\"", nil, "download.bitcoind_rest", "127.0.0.1:8332"},
		{"bitcoind rest scheme", "[download]\nbitcoind_rest = \"ftp://h/rest\"", nil, "download.bitcoind_rest", "ftp://h/rest"},
		{"interval off grid", "[snapshot]\ninterval = \"4h\"", nil, "snapshot.interval", "4h0m0s"},
		{"interval zero", "[snapshot]\ninterval = \"0s\"", nil, "snapshot.interval", "0s"},
		{"interval negative", "[snapshot]\ninterval = \"-3h\"", nil, "snapshot.interval", "-3h0m0s"},
		{"interval from env", "", map[string]string{"LNSYNC_SNAPSHOT_INTERVAL": "90m"}, "snapshot.interval", "1h30m0s"},
		{"interval unparsable env", "", map[string]string{"LNSYNC_SNAPSHOT_INTERVAL": "soon"}, "snapshot.interval (from LNSYNC_SNAPSHOT_INTERVAL)", "soon"},
		{"empty snapshot dir", "[snapshot]\ndirectory = \"\"", nil, "snapshot.directory", ""},
		{"bad listen", "[http]\nlisten = \"8080\"", nil, "http.listen", "8080"},
		{"retention too short", "[retention]\nhistory = \"7d\"", nil, "retention.history", "7d"},
		{"max conns", "[database]\nmax_conns = 1", nil, "database.max_conns", "1"},
		{"write batch", "[database]\nwrite_batch = 0", nil, "database.write_batch", "0"},
		{"bad peer from env", "", map[string]string{"LNSYNC_PEERS": "abc"}, "download.peers[0]", "abc"},
		{"unknown reconcile key", "[reconcile]\nmax_windows = \"1d\"", nil, "reconcile.max_windows", ""},
		{"raw window zero", "[reconcile]\nmax_raw_window = \"0s\"", nil, "reconcile.max_raw_window", "0s"},
		{"raw window over max window", "[reconcile]\nmax_window = \"2h\"", nil, "reconcile.max_raw_window", "6h0m0s"},
		{"raw window over receipts", "[retention]\nreceipts = \"1d\"\n[reconcile]\nmax_raw_window = \"2d\"", nil, "reconcile.max_raw_window", "2d"},
		{"max window negative", "[reconcile]\nmax_window = \"-24h\"", nil, "reconcile.max_window", "-24h0m0s"},
		{"estimate window zero", "[reconcile]\nmax_estimate_window = \"0s\"", nil, "reconcile.max_estimate_window", "0s"},
		{"estimate window over max window", "[reconcile]\nmax_window = \"12h\"\nmax_raw_window = \"1h\"", nil, "reconcile.max_estimate_window", "1d"},
		{"estimate window over receipts", "[retention]\nreceipts = \"12h\"\n[reconcile]\nmax_raw_window = \"1h\"", nil, "reconcile.max_estimate_window", "1d"},
		{"max receipts", "[reconcile]\nmax_receipts = 0", nil, "reconcile.max_receipts", "0"},
		{"max rounds", "[reconcile]\nmax_rounds = -5", nil, "reconcile.max_rounds", "-5"},
		{"max verify rounds", "[reconcile]\nmax_verify_rounds = 0", nil, "reconcile.max_verify_rounds", "0"},
		{"verify rounds over rounds", "[reconcile]\nmax_rounds = 1000", nil, "reconcile.max_verify_rounds", "2000"},
		{"aggregate every zero", "[reconcile]\naggregate_every = \"0s\"", nil, "reconcile.aggregate_every", "0s"},
		{"keep aggregates negative", "[reconcile]\nkeep_aggregates = \"-1h\"", nil, "reconcile.keep_aggregates", "-1h0m0s"},
		{"keep aggregates under max window", "[reconcile]\nkeep_aggregates = \"7d\"", nil, "reconcile.keep_aggregates", "7d"},
		{"keep aggregates under a day", "[reconcile]\nmax_window = \"6h\"\nmax_estimate_window = \"6h\"\nkeep_aggregates = \"3h\"", nil, "reconcile.keep_aggregates", "3h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			_, err := Load(path, func(k string) string { return tt.env[k] })
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			if cerr.Key != tt.wantKey {
				t.Errorf("key = %q, want %q (err: %v)", cerr.Key, tt.wantKey, err)
			}
			if tt.wantVal != "" && cerr.Value != tt.wantVal {
				t.Errorf("value = %q, want %q (err: %v)", cerr.Value, tt.wantVal, err)
			}
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("message %q does not name the key", err)
			}
		})
	}
}

func TestSyntaxErrorNamesLine(t *testing.T) {
	path := writeConfig(t, "network = \"mainnet\"\nlog_level = \n")
	_, err := Load(path, noEnv)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err = %v, want a parse error on line 2", err)
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "absent.toml"), noEnv); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not-exist", err)
	}
}

func TestMaxIncrementalScope(t *testing.T) {
	tests := []struct{ interval, want time.Duration }{
		{3 * time.Hour, 32 * 24 * time.Hour},
		{24 * time.Hour, 32 * 24 * time.Hour},
		{6 * time.Hour, 32 * 24 * time.Hour},
		{9 * time.Hour, 24 * 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := MaxIncrementalScope(tt.interval); got != tt.want {
			t.Errorf("MaxIncrementalScope(%v) = %v, want %v", tt.interval, got, tt.want)
		}
	}
}

func TestDurationText(t *testing.T) {
	for in, want := range map[string]time.Duration{"3h": 3 * time.Hour, "14d": 14 * 24 * time.Hour, "200ms": 200 * time.Millisecond,
		"106751d": 106751 * 24 * time.Hour} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err != nil || d.Std() != want {
			t.Errorf("%q -> %v, %v; want %v", in, d, err, want)
		}
	}
	// 213504d and 213539d used to wrap around to 25 m 26 s and 35 days.
	for _, bad := range []string{"", "d", "-1d", "3x", "1.5d", "106752d", "213504d", "213539d", "2147483647d"} {
		var d Duration
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Every bounded setting refuses the value just past its bound, naming the
// key and the value.
func TestUpperBounds(t *testing.T) {
	tests := []struct{ text, key, value string }{
		{"[database]\nmax_conns = 1001", "database.max_conns", "1001"},
		{"[database]\nwrite_queue = 1000000000000", "database.write_queue", "1000000000000"},
		{"[database]\nwrite_batch = 100001", "database.write_batch", "100001"},
		{"[database]\nflush_interval = \"61s\"", "database.flush_interval", "1m1s"},
		{"[download]\nfull_sync_peers = 1001", "download.full_sync_peers", "1001"},
		{"[download]\nbackoff_max = \"2d\"", "download.backoff_max", "2d"},
		{"[download]\ngarbage_limit = 1000001", "download.garbage_limit", "1000001"},
		{"[download]\npending_max = 1000001", "download.pending_max", "1000001"},
		{"[download]\npending_timeout = \"61m\"", "download.pending_timeout", "1h1m0s"},
		{"[http]\nlisten = \"127.0.0.1:99999\"", "http.listen", "127.0.0.1:99999"},
		{"[http]\nlisten = \"127.0.0.1:http\"", "http.listen", "127.0.0.1:http"},
		{"[reconcile]\nmax_receipts = 100000001", "reconcile.max_receipts", "100000001"},
		{"[reconcile]\nmax_rounds = 100000001", "reconcile.max_rounds", "100000001"},
		{"[http]\ndynamic_per_client = 65", "http.dynamic_per_client", "65"},
		{"[reconcile]\nmemory_budget_mib = 1048577", "reconcile.memory_budget_mib", "1048577"},
		{"[reconcile]\nmemory_budget_mib = 15", "reconcile.memory_budget_mib", "15"},
		{"[reconcile]\nmax_in_flight = 65", "reconcile.max_in_flight", "65"},
		{"[http]\ndynamic_per_client = 0", "http.dynamic_per_client", "0"},
		{"[http]\ndynamic_per_minute = 100001", "http.dynamic_per_minute", "100001"},
		{"[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.example\"]", "http.trusted_proxies", "proxy.example"},
		{"shutdown_timeout = \"11m\"", "shutdown_timeout", "11m0s"},
		{"shutdown_timeout = \"1s\"", "shutdown_timeout", "1s"},
		{"[retention]\nimported = \"-1h\"", "retention.imported", "-1h0m0s"},
	}
	for _, tt := range tests {
		_, err := Load(writeConfig(t, tt.text), noEnv)
		var cerr *Error
		if !errors.As(err, &cerr) || cerr.Key != tt.key || cerr.Value != tt.value {
			t.Errorf("%q: %v, want an error for %s = %s", tt.text, err, tt.key, tt.value)
		}
	}
	// The bounds themselves are accepted.
	ok := "[database]\nmax_conns = 1000\nwrite_queue = 2000000\nwrite_batch = 100000\nflush_interval = \"1m\"\n" +
		"[download]\nfull_sync_peers = 1000\nbackoff_max = \"1d\"\ngarbage_limit = 1000000\npending_max = 1000000\npending_timeout = \"1h\"\n" +
		"[http]\nlisten = \"127.0.0.1:0\"\ndynamic_per_client = 64\ndynamic_per_minute = 100000\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n" +
		"[reconcile]\nmax_receipts = 100000000\nmax_rounds = 100000000\nmemory_budget_mib = 1048576\nmax_in_flight = 64\n"
	if _, err := Load(writeConfig(t, ok), noEnv); err != nil {
		t.Errorf("the bounds themselves: %v", err)
	}
}
