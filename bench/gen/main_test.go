package gen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lightningnetwork/lnd/lnwire"

	"github.com/lnsync/lnsync/gsp"
)

// datasets is the repository's testdata directory as seen from this package.
const datasets = "../../testdata"

// fixture is one generated history, read back and decoded.
type fixture struct {
	net   *Network
	dir   string
	man   *Manifest
	files []string
	msgs  []decoded // all messages of all files, in file order
}

type decoded struct {
	file int // 0 = initial.gsp, d+1 = day d
	rec  gsp.Record
	msg  lnwire.Message
}

// smallHistory is the shared history most tests inspect: a 3,000-channel
// sample of the 2024 snapshot over 2 days, on regtest. It is generated on
// first use, so that a run of only the tests that do not read it (the race
// detector's run of TestDeterminism in make test) does not pay for it.
var smallHistory struct {
	once sync.Once
	dir  string
	fix  *fixture
	err  error
}

func smallFixture(t testing.TB) *fixture {
	t.Helper()
	smallHistory.once.Do(func() {
		smallHistory.dir, smallHistory.err = os.MkdirTemp("", "lnsync-gen-test")
		if smallHistory.err != nil {
			return
		}
		smallHistory.fix, smallHistory.err = buildFixture(smallHistory.dir, Params{Seed: 7, Channels: 3000, Days: 2,
			Start: DefaultStart, Chain: Chains["regtest"]})
	})
	if smallHistory.err != nil {
		t.Fatalf("small history: %v", smallHistory.err)
	}
	return smallHistory.fix
}

func TestMain(m *testing.M) {
	code := m.Run()
	if smallHistory.dir != "" {
		os.RemoveAll(smallHistory.dir)
	}
	os.Exit(code)
}

var topo2024 *Topology

func loadTopo() (*Topology, Frequencies, Frequencies, error) {
	if topo2024 == nil {
		t, err := LoadTopology(context.Background(), datasets, "2024", true)
		if err != nil {
			return nil, nil, nil, err
		}
		topo2024 = t
	}
	sf, nf, err := LoadFrequencies(datasets)
	return topo2024, sf, nf, err
}

func buildFixture(dir string, p Params) (*fixture, error) {
	t, sf, nf, err := loadTopo()
	if err != nil {
		return nil, err
	}
	n, err := Build(t, sf, nf, p)
	if err != nil {
		return nil, err
	}
	man, err := Generate(context.Background(), n, dir)
	if err != nil {
		return nil, err
	}
	f := &fixture{net: n, dir: dir, man: man}
	for i, fs := range man.Files {
		f.files = append(f.files, fs.Name)
		b, err := os.ReadFile(filepath.Join(dir, fs.Name))
		if err != nil {
			return nil, err
		}
		r := gsp.NewReader(bytes.NewReader(b))
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", fs.Name, err)
			}
			msg, err := lnwire.ReadMessage(bytes.NewReader(rec.Msg), 0)
			if err != nil {
				return nil, fmt.Errorf("%s: decode: %w", fs.Name, err)
			}
			f.msgs = append(f.msgs, decoded{file: i, rec: rec, msg: msg})
		}
	}
	return f, nil
}
