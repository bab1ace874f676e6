package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// File is one RGS file of a loaded generation, held in memory with its gzip
// sibling. It is immutable.
type File struct {
	Info FileInfo
	Data []byte
	Gzip []byte
	// ETag and GzipETag are quoted strong entity tags derived from the
	// SHA-256 of Data and Gzip.
	ETag     string
	GzipETag string
}

// Generation is a published generation loaded into memory. It is immutable
// and stays valid after newer generations appear or its directory is removed.
type Generation struct {
	Manifest Manifest
	// Name is the generation's directory name.
	Name  string
	files map[string]*File
}

// Reference returns R, the reference time of every file.
func (g *Generation) Reference() time.Time { return time.Unix(g.Manifest.Reference, 0).UTC() }

// Interval returns the snapshot interval the generation was made with.
func (g *Generation) Interval() time.Duration {
	return time.Duration(g.Manifest.Interval) * time.Second
}

// Pick returns the file for a client of format version whose last sync was
// at ts (see Manifest.Pick), or nil for an unknown version.
func (g *Generation) Pick(version int, ts int64) *File {
	info := g.Manifest.Pick(version, ts)
	if info == nil {
		return nil
	}
	return g.files[info.Name]
}

// LoadGeneration reads the generation in dir and checks every file against
// the manifest's digests.
func LoadGeneration(dir string) (*Generation, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	g := &Generation{Manifest: *m, Name: filepath.Base(dir), files: make(map[string]*File, len(m.Files))}
	for _, info := range m.Files {
		f := &File{Info: info}
		if f.Data, f.ETag, err = readChecked(filepath.Join(dir, info.Name), info.SHA256); err != nil {
			return nil, err
		}
		if f.Gzip, f.GzipETag, err = readChecked(filepath.Join(dir, info.Name+".gz"), info.GzipSHA256); err != nil {
			return nil, err
		}
		g.files[info.Name] = f
	}
	return g, nil
}

func readChecked(path, want string) ([]byte, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read snapshot file: %w", err)
	}
	sum := sha256.Sum256(b)
	got := hex.EncodeToString(sum[:])
	if got != want {
		return nil, "", fmt.Errorf("snapshot file %s: sha256 %s, manifest says %s", path, got, want)
	}
	return b, `"` + got[:32] + `"`, nil
}

// Catalog keeps the published generation of a snapshot directory in memory
// for the HTTP API. It follows the current link, whoever publishes (this
// process's Scheduler or a separate `lnsync snapshot`): Reload loads a new
// target, and Start polls for one. Readers never build paths from requests:
// they pick among the loaded files. Safe for concurrent use.
type Catalog struct {
	dir    string
	poll   time.Duration
	logger *slog.Logger

	mu  sync.Mutex // serialises reloads
	cur atomic.Pointer[Generation]

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewCatalog returns a Catalog over dir that polls the current link every
// poll (zero means one second) once started.
func NewCatalog(dir string, poll time.Duration, logger *slog.Logger) *Catalog {
	if poll <= 0 {
		poll = time.Second
	}
	return &Catalog{dir: dir, poll: poll, logger: logger.With("component", "snapshot-catalog")}
}

// Current returns the loaded generation, or nil before the first one.
func (c *Catalog) Current() *Generation { return c.cur.Load() }

// Reload loads the generation the current link points to if it is not the
// loaded one. On error the loaded generation stays.
func (c *Catalog) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	name, err := currentTarget(c.dir)
	if err != nil || name == "" {
		return err
	}
	if g := c.cur.Load(); g != nil && g.Name == name {
		return nil
	}
	g, err := LoadGeneration(filepath.Join(c.dir, GenerationsDir, name))
	if err != nil {
		return err
	}
	c.cur.Store(g)
	c.logger.Info("serving snapshot generation", "reference", g.Manifest.Reference, "name", name)
	return nil
}

// Start loads the current generation and keeps following the link in the
// background until ctx ends or Stop.
func (c *Catalog) Start(ctx context.Context) {
	if err := c.Reload(); err != nil {
		c.logger.Warn("load snapshot generation", "err", err)
	}
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.poll)
		defer t.Stop()
		var lastErr string
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := c.Reload(); err != nil {
				// Logged once per distinct error: a removed generation fails every
				// poll until the next one is published.
				if err.Error() != lastErr {
					c.logger.Warn("load snapshot generation", "err", err)
				}
				lastErr = err.Error()
			} else {
				lastErr = ""
			}
		}
	}()
}

// Stop stops polling and waits for the poller to exit.
func (c *Catalog) Stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.wg.Wait()
}
