package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/btcsuite/btcd/btcec/v2"
)

// SnapshotGrid is the spacing of the timestamps RGS clients ask for. Every
// snapshot interval is a multiple of it.
const SnapshotGrid = 3 * time.Hour

// Config is lnsync's whole configuration. The zero value is not useful: start
// from Default and decode over it (Load does both).
type Config struct {
	// Network is the Bitcoin network whose gossip is collected: mainnet (alias
	// bitcoin), testnet, testnet4, signet or regtest. Default "mainnet".
	Network string `toml:"network"`
	// LogLevel is debug, info, warn or error. Default "info".
	LogLevel string `toml:"log_level"`
	// LogFormat is text or json. Default "text".
	LogFormat string `toml:"log_format"`
	// ShutdownTimeout bounds how long the process takes to exit after
	// SIGTERM or SIGINT, whatever the database does: what could not be
	// written by then is counted and logged. More than 1s, at most 10m.
	// Default "30s".
	ShutdownTimeout Duration `toml:"shutdown_timeout"`

	Database  Database  `toml:"database"`
	Download  Download  `toml:"download"`
	Snapshot  Snapshot  `toml:"snapshot"`
	HTTP      HTTP      `toml:"http"`
	Retention Retention `toml:"retention"`
	Reconcile Reconcile `toml:"reconcile"`
}

// WriterShutdownTimeout is the part of ShutdownTimeout the batched writer
// may spend committing what is queued: the rest is left for the other
// components to stop and for the final log lines.
func (c Config) WriterShutdownTimeout() time.Duration {
	return c.ShutdownTimeout.Std() * 5 / 6
}

// Database configures the Postgres connection and the batched writer.
type Database struct {
	// URL is a libpq-style connection string or postgres:// URL. Default empty:
	// it must come from the file or LNSYNC_DATABASE_URL.
	URL string `toml:"url"`
	// MaxConns caps the connection pool: 2 to 1000. Default 8.
	MaxConns int32 `toml:"max_conns"`
	// WriteQueue is how many accepted messages may wait for the writer before
	// senders block (back-pressure): 1 to 2,000,000. Default 50000.
	WriteQueue int `toml:"write_queue"`
	// WriteBatch is the most rows the writer commits in one transaction:
	// 1 to 100,000. Default 5000.
	WriteBatch int `toml:"write_batch"`
	// FlushInterval is the longest a message waits in a partial batch:
	// positive, at most 1m. Default "200ms".
	FlushInterval Duration `toml:"flush_interval"`
}

// Download configures the gossip peers.
type Download struct {
	// Peers are the Lightning nodes to collect gossip from, each as
	// "pubkey@host:port" with a 66-hex-digit compressed public key. Left
	// out, it is MainnetSeeds on mainnet and empty on other networks; an
	// empty list is the explicit choice to collect nothing.
	Peers []string `toml:"peers"`
	// FullSyncPeers is how many peers, the first ones listed, are asked for
	// the full two-week gossip dump on first connection; the others only for
	// the last RecentWindow. 1 to 1000. Default 5.
	FullSyncPeers int `toml:"full_sync_peers"`
	// RecentWindow is how far back the other peers, and every peer
	// reconnecting (from the newest stored timestamp), are asked for gossip.
	// Between 1m and 14d. Default "1h".
	RecentWindow Duration `toml:"recent_window"`
	// BackoffMin is the first wait before reconnecting to a peer; it doubles
	// (with jitter) up to BackoffMax. Positive. Default "5s".
	BackoffMin Duration `toml:"backoff_min"`
	// BackoffMax caps the reconnection wait; a peer disconnected for sending
	// garbage waits this long. At least BackoffMin, at most 1d. Default "5m".
	BackoffMax Duration `toml:"backoff_max"`
	// GarbageLimit is how many invalid messages (bad signature, wrong chain,
	// malformed, unknown type …) one connection may deliver before it is
	// closed. 1 to 1,000,000. Default 100.
	GarbageLimit int `toml:"garbage_limit"`
	// PendingMax bounds how many channel updates and node announcements may
	// wait for the announcement of their channel; one peer may hold at most a
	// quarter of them. 1 to 1,000,000. Default 10000.
	PendingMax int `toml:"pending_max"`
	// PendingTimeout is how long such a message waits before it is dropped.
	// Positive, at most 1h. Default "2m".
	PendingTimeout Duration `toml:"pending_timeout"`
	// BitcoindREST is the base URL of a bitcoind REST interface (bitcoind
	// -rest), e.g. "http://127.0.0.1:8332/rest". When set, each channel
	// announcement's funding output is checked on chain and its amount stored
	// as the channel capacity (which caps htlc_maximum_msat), and channels
	// stored without one are back-filled. Default empty: no check, no
	// capacity served.
	BitcoindREST string `toml:"bitcoind_rest"`
}

// Snapshot configures precomputed deltas.
type Snapshot struct {
	// Interval is how often snapshots are computed; a positive multiple of 3h.
	// Default "3h".
	Interval Duration `toml:"interval"`
	// Directory is where snapshot generations are written. Default
	// "./snapshots".
	Directory string `toml:"directory"`
}

// HTTP configures the API server.
type HTTP struct {
	// Listen is the TCP address the server binds, host:port with a port
	// from 0 (any free one) to 65535. Default "127.0.0.1:8080".
	Listen string `toml:"listen"`
	// DynamicPerClient is how many /dynamic deltas not computed yet one
	// client may have computing at once (of the two computed at a time).
	// 1 to 64. Default 1.
	DynamicPerClient int `toml:"dynamic_per_client"`
	// DynamicPerMinute is how many such computations one client may start
	// per minute; 0 for no limit. 0 to 100000. Default 20.
	DynamicPerMinute int `toml:"dynamic_per_minute"`
	// TrustedProxies are the addresses or CIDR prefixes of reverse proxies
	// in front of lnsync: for their connections the client is taken from
	// X-Forwarded-For (the right-most address that is not a trusted proxy).
	// Default none: the connection's address is the client.
	TrustedProxies []string `toml:"trusted_proxies"`
}

// Prefixes parses TrustedProxies; single addresses become /32 or /128.
func (h HTTP) Prefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range h.TrustedProxies {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, &Error{Key: "http.trusted_proxies", Value: s, Msg: "want an IP address or CIDR prefix"}
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Retention bounds how much history Postgres keeps.
type Retention struct {
	// History is how far back channel updates and node announcements are
	// kept; for every channel direction and node the newest message before the
	// cut-off is kept too. It must cover the widest incremental snapshot scope.
	// Default "35d".
	History Duration `toml:"history"`
	// Receipts is how long per-peer receipts are kept. Default "14d".
	Receipts Duration `toml:"receipts"`
	// Imported is History for what lnsync import stored (and its messages
	// still waiting for their channel). "0", the default, keeps it for good.
	// Imported rows are pruned one run after a warning names how many will
	// go.
	Imported Duration `toml:"imported"`
	// Every is how often the pruning job runs. Default "1h".
	Every Duration `toml:"every"`
}

// Reconcile bounds the work of one /v1/reconciliation/ request and schedules
// the hourly aggregation of receipts. The defaults are those of
// reconcile.Config.
type Reconcile struct {
	// MaxRawWindow is the longest metrics window computed from raw receipts;
	// longer windows are answered from the hourly aggregates, and at most
	// this much of such a window may still be unaggregated. Positive, at most
	// MaxWindow and retention.receipts. Default "6h".
	MaxRawWindow Duration `toml:"max_raw_window"`
	// MaxWindow is the longest metrics window. Positive. Default "31d".
	MaxWindow Duration `toml:"max_window"`
	// MaxEstimateWindow is the longest sketch-estimate window. Estimates need
	// raw receipts, so it is at most retention.receipts, and at most
	// MaxWindow. Positive. Default "24h".
	MaxEstimateWindow Duration `toml:"max_estimate_window"`
	// MaxReceipts is the most receipts one request loads into memory, 16
	// bytes each while loading. 1 to 100,000,000. Default 30000000.
	MaxReceipts int `toml:"max_receipts"`
	// MaxRounds is the most (peer, round) pairs one estimate request
	// computes, summed over a sweep. 1 to 100,000,000. Default 5000000.
	MaxRounds int `toml:"max_rounds"`
	// MaxVerifyRounds is the most rounds one request builds real sketches
	// for (about 20 ms each). At least 1 and at most MaxRounds. Default 2000.
	MaxVerifyRounds int `toml:"max_verify_rounds"`
	// AggregateEvery is how often closed hours are looked for and
	// aggregated. Positive. Default "5m".
	AggregateEvery Duration `toml:"aggregate_every"`
	// KeepAggregates is how long hourly aggregates are kept (about 90 MB a
	// day at mainnet rates). Zero keeps them forever; otherwise at least
	// MaxWindow and 1d, so that every window allowed can be answered and
	// the newest aggregated hour is never pruned. Default "0s".
	KeepAggregates Duration `toml:"keep_aggregates"`
	// MemoryBudgetMiB is the memory (MiB) research requests that load
	// receipts may hold together, charged 64 bytes per receipt: beyond it a
	// request waits up to 2 s, then gets 503 with Retry-After; one that needs
	// more than all of it is refused. 16 to 1048576. Default 512.
	MemoryBudgetMiB int `toml:"memory_budget_mib"`
	// MaxInFlight is how many such requests run at once. 1 to 64. Default 4.
	MaxInFlight int `toml:"max_in_flight"`
}

// MainnetSeeds are the peers lnsync collects from on mainnet when the
// configuration names none: six of the best-connected public nodes, run by
// six operators (Wallet of Satoshi, the reference server's default; Kraken;
// CoinGate; Boltz; Bitfinex; LQwD), each at the clearnet address of its own
// signed node_announcement. Any one of them relays the whole graph; several
// keep collection going while one is unreachable.
var MainnetSeeds = []string{
	"035e4ff418fc8b5554c5d9eea66396c227bd429a3251c8cbc711002ba215bfc226@170.75.163.209:9735",
	"02f1a8c87607f415c8f22c00593002775941dea48869ce23096af27b0cfdcc0b69@193.118.169.108:9735",
	"0242a4ae0c5bef18048fbecf995094b74bfb0f7391418d71ed394784373f41e4f3@3.124.63.44:9735",
	"026165850492521f4ac8abd9bd8088123446d126f648ca35e60f88177dc149ceb2@143.202.162.204:9735",
	"033d8656219478701227199cbd6f670335c8d408a92ae88b962c49d4dc0e83e025@34.65.85.39:9735",
	"0364913d18a19c671bb36dd04d6ad5be0fe8f2894314c36a9db3f03c2d414907e1@192.243.215.102:9735",
}

// DefaultPeers returns the peers used for network when the configuration
// names none: MainnetSeeds on mainnet, none elsewhere.
func DefaultPeers(network string) []string {
	if n := strings.ToLower(network); n == "mainnet" || n == "bitcoin" {
		return slices.Clone(MainnetSeeds)
	}
	return []string{}
}

// Default returns the configuration used for every key a file leaves out.
// Download.Peers stays nil: Load resolves it with DefaultPeers once the
// network is known.
func Default() Config {
	return Config{
		Network:         "mainnet",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: Duration(30 * time.Second),
		Database: Database{
			MaxConns:      8,
			WriteQueue:    50000,
			WriteBatch:    5000,
			FlushInterval: Duration(200 * time.Millisecond),
		},
		Download: Download{
			FullSyncPeers:  5,
			RecentWindow:   Duration(time.Hour),
			BackoffMin:     Duration(5 * time.Second),
			BackoffMax:     Duration(5 * time.Minute),
			GarbageLimit:   100,
			PendingMax:     10000,
			PendingTimeout: Duration(2 * time.Minute),
		},
		Snapshot: Snapshot{
			Interval:  Duration(SnapshotGrid),
			Directory: "./snapshots",
		},
		HTTP: HTTP{Listen: "127.0.0.1:8080", DynamicPerClient: 1, DynamicPerMinute: 20, TrustedProxies: []string{}},
		Retention: Retention{
			History:  Duration(35 * 24 * time.Hour),
			Receipts: Duration(14 * 24 * time.Hour),
			Every:    Duration(time.Hour),
		},
		Reconcile: Reconcile{
			MaxRawWindow:      Duration(6 * time.Hour),
			MaxWindow:         Duration(31 * 24 * time.Hour),
			MaxEstimateWindow: Duration(24 * time.Hour),
			MaxReceipts:       30_000_000,
			MaxRounds:         5_000_000,
			MaxVerifyRounds:   2_000,
			MemoryBudgetMiB:   512,
			MaxInFlight:       4,
			AggregateEvery:    Duration(5 * time.Minute),
		},
	}
}

// Error is a configuration problem tied to one key.
type Error struct {
	Key   string // dotted TOML key, e.g. "snapshot.interval"
	Value string // the offending value as written
	Msg   string // what is wrong with it
}

func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("config %s: %s", e.Key, e.Msg)
	}
	return fmt.Sprintf("config %s = %q: %s", e.Key, e.Value, e.Msg)
}

// Load reads path (skipped when path is empty), decodes it over Default,
// applies environment overrides from getenv (os.Getenv when nil) and
// validates the result. A missing file is an error unless path is empty.
func Load(path string, getenv func(string) string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		if err := Decode(string(data), &cfg); err != nil {
			return Config{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return Config{}, err
	}
	if cfg.Download.Peers == nil {
		cfg.Download.Peers = DefaultPeers(cfg.Network)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Decode decodes TOML text over cfg and rejects keys that Config does not
// have.
func Decode(text string, cfg *Config) error {
	md, err := toml.Decode(text, cfg)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return fmt.Errorf("parse config: line %d: %s", perr.Position.Line, perr.Message)
		}
		return fmt.Errorf("parse config: %w", err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return &Error{Key: undecoded[0].String(), Msg: "unknown key"}
	}
	if md.IsDefined("download", "peers") && cfg.Download.Peers == nil {
		// "peers = []" is a choice, unlike a file that leaves peers out.
		cfg.Download.Peers = []string{}
	}
	return nil
}

// envOverrides maps each environment variable to the key it overrides.
var envOverrides = []struct {
	name, key string
	set       func(*Config, string) error
}{
	{"LNSYNC_NETWORK", "network", func(c *Config, v string) error { c.Network = v; return nil }},
	{"LNSYNC_LOG_LEVEL", "log_level", func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"LNSYNC_LOG_FORMAT", "log_format", func(c *Config, v string) error { c.LogFormat = v; return nil }},
	{"LNSYNC_DATABASE_URL", "database.url", func(c *Config, v string) error { c.Database.URL = v; return nil }},
	{"LNSYNC_PEERS", "download.peers", func(c *Config, v string) error { c.Download.Peers = splitList(v); return nil }},
	{"LNSYNC_SNAPSHOT_INTERVAL", "snapshot.interval", func(c *Config, v string) error {
		return c.Snapshot.Interval.UnmarshalText([]byte(v))
	}},
	{"LNSYNC_SNAPSHOT_DIR", "snapshot.directory", func(c *Config, v string) error { c.Snapshot.Directory = v; return nil }},
	{"LNSYNC_HTTP_LISTEN", "http.listen", func(c *Config, v string) error { c.HTTP.Listen = v; return nil }},
}

func applyEnv(cfg *Config, getenv func(string) string) error {
	for _, o := range envOverrides {
		v, ok := lookup(getenv, o.name)
		if !ok {
			continue
		}
		if err := o.set(cfg, v); err != nil {
			return &Error{Key: o.key + " (from " + o.name + ")", Value: v, Msg: err.Error()}
		}
	}
	return nil
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// splitList splits a comma-separated list, dropping blanks around and
// between items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Validate checks every field and returns the first problem found as an
// *Error naming its key and value.
func (c *Config) Validate() error {
	if _, err := ChainHash(c.Network); err != nil {
		return &Error{Key: "network", Value: c.Network, Msg: "want mainnet, bitcoin, testnet, testnet4, signet or regtest"}
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		return &Error{Key: "log_level", Value: c.LogLevel, Msg: "want debug, info, warn or error"}
	}
	if err := durationIn("shutdown_timeout", c.ShutdownTimeout, time.Second, 10*time.Minute); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return &Error{Key: "log_format", Value: c.LogFormat, Msg: "want text or json"}
	}
	if err := intIn("database.max_conns", int(c.Database.MaxConns), 2, 1000); err != nil {
		return err
	}
	// About 1 GB of queued messages at the most.
	if err := intIn("database.write_queue", c.Database.WriteQueue, 1, 2_000_000); err != nil {
		return err
	}
	if err := intIn("database.write_batch", c.Database.WriteBatch, 1, 100_000); err != nil {
		return err
	}
	if err := durationIn("database.flush_interval", c.Database.FlushInterval, 0, time.Minute); err != nil {
		return err
	}
	mainnet := slices.Equal(DefaultPeers(c.Network), MainnetSeeds)
	for i, p := range c.Download.Peers {
		if _, err := ParsePeer(p); err != nil {
			return &Error{Key: fmt.Sprintf("download.peers[%d]", i), Value: p, Msg: err.Error()}
		}
		if !mainnet && slices.Contains(MainnetSeeds, p) {
			return &Error{Key: fmt.Sprintf("download.peers[%d]", i), Value: p,
				Msg: "a mainnet seed, but network is " + c.Network + ": list that network's peers"}
		}
	}
	if err := c.Download.validate(); err != nil {
		return err
	}
	iv := c.Snapshot.Interval.Std()
	if iv <= 0 || iv%SnapshotGrid != 0 {
		return &Error{Key: "snapshot.interval", Value: c.Snapshot.Interval.String(), Msg: "want a positive multiple of 3h"}
	}
	if c.Snapshot.Directory == "" {
		return &Error{Key: "snapshot.directory", Msg: "must not be empty"}
	}
	if _, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		return &Error{Key: "http.listen", Value: c.HTTP.Listen, Msg: "want host:port"}
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return &Error{Key: "http.listen", Value: c.HTTP.Listen, Msg: "want a port from 0 (any free one) to 65535"}
	}
	if err := intIn("http.dynamic_per_client", c.HTTP.DynamicPerClient, 1, 64); err != nil {
		return err
	}
	if err := intIn("http.dynamic_per_minute", c.HTTP.DynamicPerMinute, 0, 100_000); err != nil {
		return err
	}
	if _, err := c.HTTP.Prefixes(); err != nil {
		return err
	}
	if min := MaxIncrementalScope(iv); c.Retention.History.Std() < min {
		return &Error{Key: "retention.history", Value: c.Retention.History.String(),
			Msg: fmt.Sprintf("must cover the widest incremental snapshot scope (%s)", Duration(min))}
	}
	if c.Retention.Receipts <= 0 {
		return &Error{Key: "retention.receipts", Value: c.Retention.Receipts.String(), Msg: "want a positive duration"}
	}
	if c.Retention.Every <= 0 {
		return &Error{Key: "retention.every", Value: c.Retention.Every.String(), Msg: "want a positive duration"}
	}
	if c.Retention.Imported < 0 {
		return &Error{Key: "retention.imported", Value: c.Retention.Imported.String(), Msg: `want a positive duration, or "0" to keep imported data for good`}
	}
	return c.Reconcile.validate(c.Retention.Receipts)
}

func (d *Download) validate() error {
	switch {
	case d.RecentWindow.Std() < time.Minute || d.RecentWindow.Std() > 14*24*time.Hour:
		return &Error{Key: "download.recent_window", Value: d.RecentWindow.String(), Msg: "want between 1m and 14d"}
	case d.BackoffMin <= 0:
		return &Error{Key: "download.backoff_min", Value: d.BackoffMin.String(), Msg: "want a positive duration"}
	case d.BackoffMax < d.BackoffMin:
		return &Error{Key: "download.backoff_max", Value: d.BackoffMax.String(), Msg: "want at least download.backoff_min (" + d.BackoffMin.String() + ")"}
	case d.BackoffMax.Std() > 24*time.Hour:
		return &Error{Key: "download.backoff_max", Value: d.BackoffMax.String(), Msg: "want at most 1d"}
	}
	for _, err := range []error{
		intIn("download.full_sync_peers", d.FullSyncPeers, 1, 1000),
		intIn("download.garbage_limit", d.GarbageLimit, 1, 1_000_000),
		intIn("download.pending_max", d.PendingMax, 1, 1_000_000),
		durationIn("download.pending_timeout", d.PendingTimeout, 0, time.Hour),
	} {
		if err != nil {
			return err
		}
	}
	if d.BitcoindREST != "" {
		u, err := url.Parse(d.BitcoindREST)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{Key: "download.bitcoind_rest", Value: d.BitcoindREST, Msg: "want an http:// or https:// URL"}
		}
	}
	return nil
}

// intIn returns an *Error naming key and v when v is outside [lo, hi].
func intIn(key string, v, lo, hi int) error {
	if v < lo || v > hi {
		return &Error{Key: key, Value: strconv.Itoa(v), Msg: fmt.Sprintf("want from %d to %d", lo, hi)}
	}
	return nil
}

// durationIn returns an *Error naming key and v when v is not in (lo, hi].
func durationIn(key string, v Duration, lo, hi time.Duration) error {
	if v.Std() <= lo || v.Std() > hi {
		return &Error{Key: key, Value: v.String(), Msg: fmt.Sprintf("want more than %s and at most %s", Duration(lo), Duration(hi))}
	}
	return nil
}

// validate checks r; receipts is retention.receipts, which bounds the windows
// computed from raw receipts.
func (r *Reconcile) validate(receipts Duration) error {
	itoa := strconv.Itoa
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"reconcile.max_raw_window", r.MaxRawWindow},
		{"reconcile.max_window", r.MaxWindow},
		{"reconcile.max_estimate_window", r.MaxEstimateWindow},
		{"reconcile.aggregate_every", r.AggregateEvery},
	} {
		if d.v <= 0 {
			return &Error{Key: d.key, Value: d.v.String(), Msg: "want a positive duration"}
		}
	}
	for _, w := range []struct {
		key string
		v   Duration
	}{
		{"reconcile.max_raw_window", r.MaxRawWindow},
		{"reconcile.max_estimate_window", r.MaxEstimateWindow},
	} {
		if w.v > r.MaxWindow {
			return &Error{Key: w.key, Value: w.v.String(), Msg: "want at most reconcile.max_window (" + r.MaxWindow.String() + ")"}
		}
		if w.v > receipts {
			return &Error{Key: w.key, Value: w.v.String(),
				Msg: "want at most retention.receipts (" + receipts.String() + "): it is computed from raw receipts"}
		}
	}
	if err := intIn("reconcile.max_receipts", r.MaxReceipts, 1, 100_000_000); err != nil {
		return err
	}
	if err := intIn("reconcile.max_rounds", r.MaxRounds, 1, 100_000_000); err != nil {
		return err
	}
	switch {
	case r.MaxVerifyRounds < 1:
		return &Error{Key: "reconcile.max_verify_rounds", Value: itoa(r.MaxVerifyRounds), Msg: "want at least 1"}
	case r.MaxVerifyRounds > r.MaxRounds:
		return &Error{Key: "reconcile.max_verify_rounds", Value: itoa(r.MaxVerifyRounds), Msg: "want at most reconcile.max_rounds (" + itoa(r.MaxRounds) + ")"}
	}
	if err := intIn("reconcile.memory_budget_mib", r.MemoryBudgetMiB, 16, 1<<20); err != nil {
		return err
	}
	if err := intIn("reconcile.max_in_flight", r.MaxInFlight, 1, 64); err != nil {
		return err
	}
	// Pruning aggregates younger than a window the service accepts would
	// refuse that window; pruning the newest aggregated hour (about 3h old)
	// would make the aggregator start over from its backfill on every run.
	if k := r.KeepAggregates; k < 0 || (k > 0 && (k < r.MaxWindow || k < Duration(24*time.Hour))) {
		return &Error{Key: "reconcile.keep_aggregates", Value: k.String(),
			Msg: "want 0 (keep forever) or at least reconcile.max_window (" + r.MaxWindow.String() + ") and 1d"}
	}
	return nil
}

// MaxIncrementalScope is the widest non-full snapshot scope for a snapshot
// interval: scopes start at the interval and double until one reaches 21 days.
func MaxIncrementalScope(interval time.Duration) time.Duration {
	scope := interval
	for scope < 21*24*time.Hour {
		scope *= 2
	}
	return scope
}

// Peer is a parsed "pubkey@host:port" peer address.
type Peer struct {
	PubKey [33]byte // compressed secp256k1 key, validated as a curve point
	Addr   string   // host:port as configured
}

// String formats p the way it is configured.
func (p Peer) String() string { return hex.EncodeToString(p.PubKey[:]) + "@" + p.Addr }

// ParsePeer parses "pubkey@host:port".
func ParsePeer(s string) (Peer, error) {
	keyHex, addr, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return Peer{}, errors.New("want pubkey@host:port")
	}
	raw, err := hex.DecodeString(keyHex)
	if err != nil || len(raw) != 33 {
		return Peer{}, errors.New("public key must be 66 hex digits")
	}
	if _, err := btcec.ParsePubKey(raw); err != nil {
		return Peer{}, errors.New("public key is not a valid secp256k1 point")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return Peer{}, errors.New("address must be host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Peer{}, errors.New("port must be 1-65535")
	}
	var p Peer
	copy(p.PubKey[:], raw)
	p.Addr = addr
	return p, nil
}

// Peers returns the parsed peers. Validate must have accepted c.
func (c *Config) Peers() []Peer {
	out := make([]Peer, 0, len(c.Download.Peers))
	for _, s := range c.Download.Peers {
		p, err := ParsePeer(s)
		if err == nil {
			out = append(out, p)
		}
	}
	return out
}

// chainHashes holds each network's genesis block hash in wire byte order, as
// it appears in gossip messages and RGS headers.
var chainHashes = map[string]string{
	"mainnet":  "6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000",
	"bitcoin":  "6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000",
	"testnet":  "43497fd7f826957108f4a30fd9cec3aeba79972084e90ead01ea330900000000",
	"testnet4": "43f08bdab050e35b567c864b91f47f50ae725ae2de53bcfbbaf284da00000000",
	"signet":   "f61eee3b63a380a477a063af32b2bbc97c9ff9f01f2c4225e973988108000000",
	"regtest":  "06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f",
}

// ChainHash returns the genesis hash of a network name in wire byte order.
func ChainHash(network string) ([32]byte, error) {
	var h [32]byte
	s, ok := chainHashes[strings.ToLower(network)]
	if !ok {
		return h, fmt.Errorf("unknown network %q", network)
	}
	b, _ := hex.DecodeString(s)
	copy(h[:], b)
	return h, nil
}

// ChainHash returns the configured network's genesis hash in wire byte order.
// Validate must have accepted c.
func (c *Config) ChainHash() [32]byte {
	h, _ := ChainHash(c.Network)
	return h
}

// ParseLogLevel maps a configured level name to a slog.Level.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q", s)
}

// Logger builds the process logger the configuration asks for.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	level, _ := ParseLogLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
