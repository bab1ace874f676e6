// Command lnsync-loadpeer serves GSP gossip files to Lightning clients over
// BOLT 8 on loopback, at a set rate or as fast as possible, for ingestion
// benchmarks. It prints "pubkey@host:port" on its first line, then serves
// until interrupted and prints its counters as JSON.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/lnsync/lnsync/bench/loadpeer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lnsync-loadpeer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lnsync-loadpeer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: lnsync-loadpeer [flags] FILE.gsp...\n\nFlags:")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:0", "loopback address to accept on")
	keyHex := fs.String("key", "", "32-byte node secret in hex (default: random)")
	rate := fs.Float64("rate", 0, "messages per second per client (0: as fast as possible)")
	wait := fs.Bool("wait-filter", true, "start streaming after the client's gossip_timestamp_filter")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no GSP files given")
	}
	var key *btcec.PrivateKey
	if *keyHex != "" {
		raw, err := hex.DecodeString(*keyHex)
		if err != nil || len(raw) != 32 {
			return errors.New("-key must be 64 hex digits")
		}
		key, _ = btcec.PrivKeyFromBytes(raw)
	}
	p, err := loadpeer.Listen(loadpeer.Config{
		Listen: *listen, Key: key, Files: fs.Args(), Rate: *rate, WaitForFilter: *wait,
		Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	})
	if err != nil {
		return err
	}
	pub := p.PubKey()
	fmt.Fprintf(stdout, "%s@%s\n", hex.EncodeToString(pub[:]), p.Addr())
	if err := p.Serve(ctx); err != nil {
		return err
	}
	st := p.Stats()
	return json.NewEncoder(stdout).Encode(map[string]any{
		"connections": st.Connections, "sent": st.Sent, "bytes": st.Bytes, "streaming_seconds": st.Streaming.Seconds(),
	})
}
