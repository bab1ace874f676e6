package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/lnsync/lnsync/rgs"
)

// maxInspectSize bounds what inspect reads; real snapshots are a few MiB.
const maxInspectSize = 64 << 20

// cmdInspect implements `lnsync inspect [-config PATH] FILE|-`: it decodes an RGS
// file (or stdin for "-"; gzip-compressed or not), prints its full content as indented JSON on stdout and
// a one-line summary on stderr. -config is accepted for uniformity with the other
// subcommands and ignored. With -h it prints usage and returns flag.ErrHelp.
func cmdInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "config file (ignored by inspect)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lnsync inspect [-config PATH] FILE|-")
		fmt.Fprintln(stderr, "Decodes a Rapid Gossip Sync file (v1 or v2, plain or .gz; - reads stdin), prints its content")
		fmt.Fprintln(stderr, "as JSON (short channel ids also as BLOCKxTXxOUT)")
		fmt.Fprintln(stderr, "on stdout and a one-line summary on stderr.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("inspect: want one FILE or -, got %d arguments", fs.NArg())
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	name := fs.Arg(0)
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("inspect: %w", err)
		}
		defer f.Close()
		in = f
	}
	br := bufio.NewReader(in)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		// A gzip sibling, as lnsync publishes next to every file.
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("inspect: %s: %w", name, err)
		}
		defer zr.Close()
		in = zr
	} else {
		in = br
	}
	b, err := io.ReadAll(io.LimitReader(in, maxInspectSize+1))
	if err != nil {
		return fmt.Errorf("inspect: read %s: %w", name, err)
	}
	if len(b) > maxInspectSize {
		return fmt.Errorf("inspect: %s larger than %d bytes", name, maxInspectSize)
	}
	file, err := rgs.Decode(b)
	if err != nil {
		return fmt.Errorf("inspect: decode %s: %w", name, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(file); err != nil {
		return fmt.Errorf("inspect: write json: %w", err)
	}
	summary := file.Summary()
	if err := file.Validate(nil, 0); errors.Is(err, rgs.ErrNodeOrder) {
		summary += "; warning: " + err.Error() + " (current clients reject this file)"
	}
	fmt.Fprintln(stderr, summary)
	return nil
}
