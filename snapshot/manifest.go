package snapshot

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Grid is the spacing of the timestamps clients ask for: every snapshot
// interval is a multiple of it, and the static tree has one name per grid
// point.
const Grid = 3 * time.Hour

// MaxIncrementalScope bounds scope doubling: the widest non-full scope is the
// first one at least this wide.
const MaxIncrementalScope = 21 * 24 * time.Hour

// DefaultEpoch is the first grid point of the static tree (2022-01-01 UTC, the
// reference server's symlink epoch): older timestamps get the full snapshot
// only through the HTTP API.
var DefaultEpoch = time.Unix(1_640_995_200, 0).UTC()

// ManifestName is the manifest's file name inside a generation.
const ManifestName = "manifest.json"

// manifestFormat is bumped when readers cannot read older manifests.
const manifestFormat = 1

// Kinds of file in a generation.
const (
	KindScope = "scope" // delta from R - scope to R
	KindFull  = "full"  // delta from nothing (L = 0)
	KindEmpty = "empty" // no content, stamped R, for clients already at R
)

// Manifest describes one generation: what was computed, from what reference
// time, and the digest of every file. It is written last into a generation,
// so a generation with a readable manifest is complete.
type Manifest struct {
	Format int `json:"format"`
	// Reference is R, the reference time every file was computed for, and
	// the header timestamp of every file.
	Reference int64 `json:"reference"`
	// Interval is the snapshot interval in seconds: the next generation is
	// due at Reference + Interval.
	Interval int64 `json:"interval"`
	// ChainHash is the chain's genesis hash as written in the files (hex).
	ChainHash string `json:"chain_hash"`
	// Created is when the generation was finished (RFC 3339, UTC).
	Created time.Time `json:"created"`
	// DurationSeconds is the wall time of the whole run.
	DurationSeconds float64 `json:"duration_seconds"`
	// StaticEpoch is the oldest grid point with a name in the static tree.
	StaticEpoch int64 `json:"static_epoch"`
	// StaticLinks is how many names the static tree holds per version
	// (gzip siblings not counted).
	StaticLinks int `json:"static_links"`
	// Files lists every file, v1 then v2, each in scope order (narrowest
	// first, then full, then empty).
	Files []FileInfo `json:"files"`
}

// FileInfo describes one RGS file of a generation and its gzip sibling.
type FileInfo struct {
	// Name is the path relative to the generation directory, e.g.
	// "v2/scope-3h.bin"; the gzip sibling is Name + ".gz".
	Name    string `json:"name"`
	Version int    `json:"version"`
	Kind    string `json:"kind"`
	// Scope is the width in seconds of a KindScope file, 0 otherwise.
	Scope int64 `json:"scope,omitempty"`
	// Last is the client sync time the delta starts from: R - Scope, 0 for
	// the full snapshot, R for the empty delta.
	Last       int64  `json:"last"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"`
	GzipSize   int64  `json:"gzip_size"`
	GzipSHA256 string `json:"gzip_sha256"`

	Announcements int `json:"announcements"`
	Updates       int `json:"updates"`
	Nodes         int `json:"nodes"`
	// DurationSeconds covers computing the delta (shared by both versions)
	// and encoding, compressing and writing this file.
	DurationSeconds float64 `json:"duration_seconds"`
}

// Scopes returns the scope widths for an interval: the interval, doubled until
// one reaches MaxIncrementalScope. The full snapshot comes on top.
func Scopes(interval time.Duration) []time.Duration {
	var out []time.Duration
	for s := interval; ; s *= 2 {
		out = append(out, s)
		if s >= MaxIncrementalScope {
			return out
		}
	}
}

// ReferenceFor returns the reference time of a run at t: t rounded down to
// the interval grid (aligned to the Unix epoch).
func ReferenceFor(t time.Time, interval time.Duration) time.Time {
	sec := int64(interval / time.Second)
	u := t.Unix()
	return time.Unix(u-mod(u, sec), 0).UTC()
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Pick returns the file answering a client whose last sync was at ts (0 for
// none): the full snapshot for 0, the empty delta for ts >= R, otherwise the
// narrowest scope reaching back to ts, or the full snapshot if no scope is
// wide enough. A scope wider than R - ts is correct for the client only
// because the delta from L carries every value that changed at any time after
// L, not just values that differ between L and R (a client at ts may hold an
// intermediate value). It returns nil only for a manifest without that
// version. The static tree and the HTTP API both use it, so they always agree.
func (m *Manifest) Pick(version int, ts int64) *FileInfo {
	var full, empty *FileInfo
	var best *FileInfo
	age := m.Reference - ts
	for i := range m.Files {
		f := &m.Files[i]
		if f.Version != version {
			continue
		}
		switch f.Kind {
		case KindFull:
			full = f
		case KindEmpty:
			empty = f
		case KindScope:
			if ts > 0 && f.Scope >= age && (best == nil || f.Scope < best.Scope) {
				best = f
			}
		}
	}
	switch {
	case ts <= 0:
		return full
	case ts >= m.Reference:
		return empty
	case best != nil:
		return best
	}
	return full
}

// check verifies that the manifest is one this package wrote.
func (m *Manifest) check() error {
	if m.Format != manifestFormat {
		return fmt.Errorf("manifest format %d, want %d", m.Format, manifestFormat)
	}
	if m.Reference <= 0 || m.Interval <= 0 {
		return fmt.Errorf("manifest reference %d, interval %d", m.Reference, m.Interval)
	}
	for _, v := range []int{1, 2} {
		if m.Pick(v, 0) == nil || m.Pick(v, m.Reference) == nil {
			return fmt.Errorf("manifest lacks the full or empty file for version %d", v)
		}
	}
	for _, f := range m.Files {
		if !filepath.IsLocal(f.Name) {
			return fmt.Errorf("manifest names %q outside the generation", f.Name)
		}
	}
	return nil
}

// ReadManifest reads and checks the manifest of the generation in dir.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", dir, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", dir, err)
	}
	return &m, nil
}
