// Command lnsync collects Lightning gossip from peers into Postgres and serves
// it to Rapid Gossip Sync clients as compact snapshots.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr)) }

// runMain runs lnsync with args until it ends or a SIGTERM or SIGINT stops
// it, and returns the exit code.
func runMain(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// Whatever a component waits for, the process ends within the
		// configured shutdown_timeout of the signal.
		<-ctx.Done()
		d := time.Duration(shutdownTimeout.Load())
		time.Sleep(d)
		fmt.Fprintf(stderr, "lnsync: still stopping %v after the signal (shutdown_timeout); exiting now\n", d)
		os.Exit(1)
	}()
	err := run(ctx, args, stdout, stderr)
	stop()
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintln(stderr, "lnsync:", err)
		return 1
	}
}

// shutdownTimeout is the configured shutdown_timeout in nanoseconds, set
// when a command loads its configuration.
var shutdownTimeout atomic.Int64

func init() { shutdownTimeout.Store(int64(30 * time.Second)) }

// errUsage marks a command-line mistake whose message was already printed.
var errUsage = errors.New("usage")

const usage = `lnsync collects Lightning gossip and serves Rapid Gossip Sync snapshots.

Usage:
  lnsync <command> [-config PATH] [arguments]

Commands:
  serve     run the downloader, the snapshotter and the HTTP API
  migrate   apply database migrations and exit
  import    validate and store gossip from GSP files (.gz, - for stdin)
  snapshot  compute one snapshot generation now (or -at TS) and exit
  inspect   print an RGS snapshot file as JSON
  export    write receipts, messages and peers of a window as CSV or Parquet
  version   print the version

Every command reads ./config.toml unless -config says otherwise; LNSYNC_*
environment variables override it. Run "lnsync <command> -h" for details.
`

type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	commands := map[string]command{
		"serve":    cmdServe,
		"migrate":  cmdMigrate,
		"import":   cmdImport,
		"export":   cmdExport,
		"snapshot": cmdSnapshot,
		"inspect":  cmdInspect,
		"version":  cmdVersion,
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "lnsync: unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

// newFlagSet returns a flag set for a command that prints summary and the
// flags on -h, and returns errUsage for bad flags.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, mapping parse errors other than -h to errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "Usage: lnsync version\n\nPrints the lnsync version and the Go toolchain that built it.", stderr)
	fs.String("config", "./config.toml", "configuration file (unused)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	goVersion := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
	}
	fmt.Fprintf(stdout, "lnsync %s (%s)\n", version, goVersion)
	return nil
}
