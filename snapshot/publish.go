package snapshot

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Names inside the snapshot directory.
const (
	// CurrentLink is the symlink naming the published generation. It is
	// replaced with a rename, so readers see either the old or the new one.
	CurrentLink = "current"
	// GenerationsDir holds the generations, each named "<R>-<unix nanos>".
	GenerationsDir = "generations"
	// StaticDir is the static tree inside a generation: "{ts}.bin" for v1 and
	// "v2/{ts}.bin" for v2, each with a ".gz" sibling.
	StaticDir = "static"
	lockName  = ".lock"
	tmpPrefix = ".tmp-"
)

// generationName is "<R>-<unix nanos>": sorting by (R, nanos) orders
// generations by age, and a rerun for the same R gets a new directory.
func generationName(ref time.Time, created time.Time) string {
	return fmt.Sprintf("%d-%d", ref.Unix(), created.UnixNano())
}

func parseGenerationName(name string) (ref, created int64, ok bool) {
	a, b, found := strings.Cut(name, "-")
	if !found {
		return 0, 0, false
	}
	r, err1 := strconv.ParseInt(a, 10, 64)
	c, err2 := strconv.ParseInt(b, 10, 64)
	return r, c, err1 == nil && err2 == nil
}

// lockDirectory takes an exclusive flock on dir/.lock, so that runs in
// different processes (lnsync serve and lnsync snapshot) never interleave.
// The kernel drops the lock when the process dies, even by SIGKILL.
func lockDirectory(ctx context.Context, dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// currentTarget returns the generation name the current link points to, or
// "" when nothing was published yet.
func currentTarget(dir string) (string, error) {
	t, err := os.Readlink(filepath.Join(dir, CurrentLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read current link: %w", err)
	}
	name := filepath.Base(t)
	if filepath.ToSlash(t) != GenerationsDir+"/"+name {
		return "", fmt.Errorf("current link points to %q, outside %s", t, GenerationsDir)
	}
	return name, nil
}

// builder writes one generation into a temporary directory.
type builder struct {
	tmp   string
	files []FileInfo
}

// encoded is one RGS file of a generation before it is written.
type encoded struct {
	info  FileInfo
	data  []byte
	gz    []byte
	sum   [32]byte
	first int // index of the first file with the same bytes; its own index when none
	// encoded is the time to compute the delta and encode this file;
	// compressed the time to compress it (zero for a copy of an earlier file).
	encoded, compressed time.Duration
}

// compressAll fills in the gzip sibling of every distinct file, on all
// cores; a file with the same bytes as an earlier one shares its result.
func compressAll(ctx context.Context, files []encoded) error {
	seen := map[[32]byte]int{}
	var distinct []int
	for i := range files {
		files[i].sum = sha256.Sum256(files[i].data)
		if j, ok := seen[files[i].sum]; ok {
			files[i].first = j
			continue
		}
		seen[files[i].sum] = i
		files[i].first = i
		distinct = append(distinct, i)
	}
	// Largest first, so that the big files do not start last.
	slices.SortFunc(distinct, func(a, b int) int { return len(files[b].data) - len(files[a].data) })
	work := make(chan int)
	errs := make(chan error, len(distinct))
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(distinct)) {
		wg.Go(func() {
			for i := range work {
				t := time.Now()
				gz, err := compress(files[i].data)
				files[i].gz, files[i].compressed = gz, time.Since(t)
				errs <- err
			}
		})
	}
	var err error
	for _, i := range distinct {
		if err = ctx.Err(); err != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for e := range errs {
		if e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	for i := range files {
		if j := files[i].first; j != i {
			files[i].gz = files[j].gz
		}
	}
	return nil
}

// GzipLevel returns the compression level of a file of size bytes, chosen
// by measurement on mainnet-scale files (55 k channels, klauspost gzip
// against the standard library's -9): files up to SmallFile bytes, the
// frequent incremental ones, get the best ratio, 9 (a 3 h delta of 173 kB:
// 49 ms, 1.4% larger than the standard -9); larger ones get 7, which is 14
// times faster for under 1% more bytes on a full snapshot (3.9 MB: 79 ms
// and 1,932,810 bytes against 1,125 ms and 1,915,925).
func GzipLevel(size int) int {
	if size <= SmallFile {
		return gzip.BestCompression
	}
	return 7
}

// SmallFile is the largest file compressed at the best ratio.
const SmallFile = 256 << 10

// compress returns data gzipped at GzipLevel.
func compress(data []byte) ([]byte, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, GzipLevel(len(data)))
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return gz.Bytes(), nil
}

// writeFile writes f and its gzip sibling, fsynced, and records them. A
// file with the same bytes as an earlier one (files[f.first]) becomes a hard
// link to it: written once, still a regular file for static hosting.
func (b *builder) writeFile(f *encoded, files []encoded) error {
	info := f.info
	gzSum := sha256.Sum256(f.gz)
	info.Size, info.SHA256 = int64(len(f.data)), hex.EncodeToString(f.sum[:])
	info.GzipSize, info.GzipSHA256 = int64(len(f.gz)), hex.EncodeToString(gzSum[:])
	path := filepath.Join(b.tmp, info.Name)
	if first := &files[f.first]; first != f {
		for _, ext := range []string{"", ".gz"} {
			if err := os.Link(filepath.Join(b.tmp, first.info.Name)+ext, path+ext); err != nil {
				return fmt.Errorf("link %s to %s: %w", info.Name+ext, first.info.Name+ext, err)
			}
		}
		b.files = append(b.files, info)
		return nil
	}
	if err := writeSynced(path, f.data); err != nil {
		return err
	}
	if err := writeSynced(path+".gz", f.gz); err != nil {
		return err
	}
	b.files = append(b.files, info)
	return nil
}

// writeSynced creates path with data and fsyncs it before closing.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", filepath.Base(path), err)
	}
	return nil
}

// syncDir fsyncs a directory so that the entries created in it are durable.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", filepath.Base(path), err)
	}
	return nil
}

// writeStatic fills the static tree: for each version a "{ts}.bin" symlink
// (and "{ts}.bin.gz") for 0, for every grid point from the epoch to R, and
// for R itself, pointing at the file Pick chooses. It returns the number of
// names per version.
func writeStatic(ctx context.Context, tmp string, m *Manifest) (int, error) {
	roots := map[int]string{1: filepath.Join(tmp, StaticDir), 2: filepath.Join(tmp, StaticDir, "v2")}
	ups := map[int]string{1: "..", 2: "../.."}
	grid := int64(Grid / time.Second)
	first := m.StaticEpoch + mod(-m.StaticEpoch, grid) // first grid point at or after the epoch
	points := []int64{0}
	for ts := first; ts < m.Reference; ts += grid {
		points = append(points, ts)
	}
	points = append(points, m.Reference)
	for _, v := range []int{1, 2} {
		if err := os.MkdirAll(roots[v], 0o755); err != nil {
			return 0, fmt.Errorf("create static tree: %w", err)
		}
		for i, ts := range points {
			if i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return 0, err // a stopping run leaves the previous generation
				}
			}
			f := m.Pick(v, ts)
			name := filepath.Join(roots[v], strconv.FormatInt(ts, 10)+".bin")
			target := ups[v] + "/" + f.Name
			if err := os.Symlink(target, name); err != nil {
				return 0, fmt.Errorf("link static %d: %w", ts, err)
			}
			if err := os.Symlink(target+".gz", name+".gz"); err != nil {
				return 0, fmt.Errorf("link static %d: %w", ts, err)
			}
		}
	}
	for _, d := range []string{roots[2], roots[1]} {
		if err := syncDir(d); err != nil {
			return 0, err
		}
	}
	return len(points), nil
}

// writeManifest writes the manifest, fsynced; it is the last file of a
// generation.
func writeManifest(tmp string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	return writeSynced(filepath.Join(tmp, ManifestName), append(b, '\n'))
}

// switchCurrent points the current link at generation name: a new symlink
// is created beside it and renamed over it, which is atomic.
func switchCurrent(dir, name string) error {
	tmp := filepath.Join(dir, fmt.Sprintf("%s%s-%d", tmpPrefix, CurrentLink, time.Now().UnixNano()))
	if err := os.Symlink(GenerationsDir+"/"+name, tmp); err != nil {
		return fmt.Errorf("link current: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, CurrentLink)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("switch current: %w", err)
	}
	return syncDir(dir)
}

// removeOrphans deletes what crashed runs left: temporary directories and
// links, and generations newer than the current one that never became
// current. The caller holds the directory lock, so no run is in progress.
func removeOrphans(dir, current string) (int, error) {
	n := 0
	for _, d := range []string{dir, filepath.Join(dir, GenerationsDir)} {
		entries, err := os.ReadDir(d)
		if err != nil {
			return n, fmt.Errorf("list %s: %w", d, err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				if err := os.RemoveAll(filepath.Join(d, e.Name())); err != nil {
					return n, fmt.Errorf("remove orphan: %w", err)
				}
				n++
			}
		}
	}
	gens, err := listGenerations(dir)
	if err != nil {
		return n, err
	}
	i := slices.Index(gens, current)
	for _, g := range gens[i+1:] {
		if err := os.RemoveAll(filepath.Join(dir, GenerationsDir, g)); err != nil {
			return n, fmt.Errorf("remove orphan: %w", err)
		}
		n++
	}
	return n, nil
}

// listGenerations returns the generation names, oldest first.
func listGenerations(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, GenerationsDir))
	if err != nil {
		return nil, fmt.Errorf("list generations: %w", err)
	}
	type gen struct {
		name       string
		r, created int64
	}
	var gens []gen
	for _, e := range entries {
		if r, c, ok := parseGenerationName(e.Name()); ok && e.IsDir() {
			gens = append(gens, gen{e.Name(), r, c})
		}
	}
	slices.SortFunc(gens, func(a, b gen) int {
		if a.r != b.r {
			return cmp.Compare(a.r, b.r)
		}
		return cmp.Compare(a.created, b.created)
	})
	out := make([]string, len(gens))
	for i, g := range gens {
		out[i] = g.name
	}
	return out, nil
}

// removeExpired deletes generations older than the current one whose
// successor was created more than grace before now: readers that opened a
// file of the old generation (a static server mid-response) have had that
// long to finish. It returns how many it removed.
func removeExpired(dir, current string, grace time.Duration, now time.Time) (int, error) {
	gens, err := listGenerations(dir)
	if err != nil {
		return 0, err
	}
	cur := slices.Index(gens, current)
	n := 0
	for i := 0; i < cur; i++ {
		_, supersededAt, _ := parseGenerationName(gens[i+1])
		if now.Sub(time.Unix(0, supersededAt)) < grace {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, GenerationsDir, gens[i])); err != nil {
			return n, fmt.Errorf("remove generation %s: %w", gens[i], err)
		}
		n++
	}
	return n, nil
}
