package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/lnsync/lnsync/bench/gen"
)

// datasets is the repository's testdata directory as seen from this package.
const datasets = "../../testdata"

// history is the generated history the tests load and stream: a 300-channel
// sample of the 2024 mainnet topology over two days, on mainnet's chain.
var history struct {
	dir   string
	man   *gen.Manifest
	files []string // initial.gsp, day-001.gsp, day-002.gsp
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lnsync-harness-test")
	if err == nil {
		err = generate(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "history:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func generate(dir string) error {
	ctx := context.Background()
	t, err := gen.LoadTopology(ctx, datasets, "2024", true)
	if err != nil {
		return err
	}
	sf, nf, err := gen.LoadFrequencies(datasets)
	if err != nil {
		return err
	}
	n, err := gen.Build(t, sf, nf, gen.Params{Seed: 3, Channels: 300, Days: 2, Start: gen.DefaultStart, Chain: gen.Chains["mainnet"]})
	if err != nil {
		return err
	}
	m, err := gen.Generate(ctx, n, dir)
	if err != nil {
		return err
	}
	history.dir, history.man = dir, m
	for _, f := range m.Files {
		history.files = append(history.files, filepath.Join(dir, f.Name))
	}
	return nil
}

// messages counts the messages of the first n files of the history.
func messages(n int) int64 {
	var total int64
	for _, f := range history.man.Files[:n] {
		total += int64(f.ChannelAnnouncements + f.ChannelUpdates + f.NodeAnnouncements)
	}
	return total
}
