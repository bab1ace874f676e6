package gen

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lnsync/lnsync/gsp"
)

// Counts tallies the messages of one file or of a whole run.
type Counts struct {
	ChannelAnnouncements int `json:"channel_announcements"`
	ChannelUpdates       int `json:"channel_updates"`
	NodeAnnouncements    int `json:"node_announcements"`
	// KeepAlives counts channel_updates identical to the previous one of
	// their direction but for the timestamp.
	KeepAlives int `json:"keep_alives"`
}

func (c *Counts) add(o Counts) {
	c.ChannelAnnouncements += o.ChannelAnnouncements
	c.ChannelUpdates += o.ChannelUpdates
	c.NodeAnnouncements += o.NodeAnnouncements
	c.KeepAlives += o.KeepAlives
}

// FileStats describes one output file.
type FileStats struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
	Counts
}

// Manifest describes a generated history; Generate writes it as
// manifest.json next to the GSP files. It holds no timings, so it is as
// deterministic as the files.
type Manifest struct {
	Seed           uint64 `json:"seed"`
	Topology       string `json:"topology"`
	NodeMap        bool   `json:"node_map"`
	Chain          string `json:"chain_hash"`
	Start          int64  `json:"start"`
	Days           int    `json:"days"`
	Channels       int    `json:"channels"`
	Nodes          int    `json:"nodes"`
	Copies         int    `json:"copies"`
	ChannelsOpened int    `json:"channels_opened"`
	ChannelsClosed int    `json:"channels_closed"`
	// TargetUpdates is the channel_update rate per day the history aims
	// at: ChannelUpdatesPerChannelDay times the mean number of open
	// channels. TargetNodeAnns is the same for node_announcements and
	// nodes with an open channel.
	TargetUpdates  float64     `json:"target_channel_updates_per_day"`
	TargetNodeAnns float64     `json:"target_node_announcements_per_day"`
	Files          []FileStats `json:"files"`
	Totals         Counts      `json:"totals"`
}

// InitialFile and DayFile name the output files: the graph as of the
// start, then one file per day of receive time.
const InitialFile = "initial.gsp"

// DayFile returns the name of the file of day d (0-based).
func DayFile(d int) string { return fmt.Sprintf("day-%03d.gsp", d+1) }

// ManifestFile is the name of the manifest Generate writes.
const ManifestFile = "manifest.json"

// ChannelsFile is the name of the CSV Generate writes with one row per
// channel: what a chain backend needs to confirm the funding output
// (scid, capacity = funding amount, both bitcoin keys of the 2-of-2
// P2WSH) plus the node ids and the opening and closing times (unix
// seconds; open_at before the start means "in the initial graph",
// close_at 0 means never).
const ChannelsFile = "channels.csv"

// Generate writes the history of n into dir (created if missing):
// InitialFile, then one DayFile per day, each in receive-time order with
// receive-time records, and ManifestFile. Messages are signed on
// Params.Workers goroutines; the output does not depend on their number.
func Generate(ctx context.Context, n *Network, dir string) (*Manifest, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output dir: %w", err)
	}
	p := n.Params
	m := &Manifest{
		Seed: p.Seed, Topology: n.Topology.Name, NodeMap: n.Topology.HasNodeMap,
		Chain: hex.EncodeToString(reversed(p.Chain[:])), Start: p.Start, Days: p.Days,
		Channels: len(n.Channels), Nodes: len(n.Nodes),
	}
	openCh, activeNd := n.openPerDay()
	m.TargetUpdates = ChannelUpdatesPerChannelDay * openCh
	m.TargetNodeAnns = NodeAnnouncementsPerNodeDay * activeNd
	for _, nd := range n.Nodes {
		m.Copies = max(m.Copies, nd.Copy+1)
	}
	for _, ch := range n.Channels {
		if ch.OpenAt >= p.Start {
			m.ChannelsOpened++
		}
		if ch.CloseAt != 0 {
			m.ChannelsClosed++
		}
	}
	h := newHistory(n)
	fs, err := writeFile(ctx, n, filepath.Join(dir, InitialFile), h.initial())
	if err != nil {
		return nil, err
	}
	m.Files = append(m.Files, fs)
	for d := range p.Days {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fs, err := writeFile(ctx, n, filepath.Join(dir, DayFile(d)), h.day(d, d == p.Days-1))
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, fs)
	}
	for _, f := range m.Files {
		m.Totals.add(f.Counts)
	}
	if err := writeChannels(n, filepath.Join(dir, ChannelsFile)); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	return m, nil
}

// openPerDay returns the mean number of open channels, and of nodes with
// at least one open channel, over the days of the history (at the start
// when there are none): the rate targets scale with them, not with the
// channels that open late or close early.
func (n *Network) openPerDay() (channels, nodes float64) {
	lo := n.Params.Start
	hi := lo + int64(max(n.Params.Days, 1))*86400
	if n.Params.Days == 0 {
		hi = lo + 1
	}
	span := float64(hi - lo)
	overlap := func(a, b int64) float64 {
		if b == 0 {
			b = hi
		}
		return float64(max(0, min(b, hi)-max(a, lo)))
	}
	perNode := make([][][2]int64, len(n.Nodes))
	for _, ch := range n.Channels {
		channels += overlap(ch.OpenAt, ch.CloseAt) / span
		for _, x := range ch.Nodes {
			perNode[x] = append(perNode[x], [2]int64{ch.OpenAt, ch.CloseAt})
		}
	}
	for _, iv := range perNode {
		// Merge the node's channel intervals, then measure the union.
		for i := range iv {
			if iv[i][1] == 0 {
				iv[i][1] = hi
			}
		}
		slices.SortFunc(iv, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
		var cur [2]int64
		for i, v := range iv {
			if i > 0 && v[0] <= cur[1] {
				cur[1] = max(cur[1], v[1])
				continue
			}
			if i > 0 {
				nodes += overlap(cur[0], cur[1]) / span
			}
			cur = v
		}
		if len(iv) > 0 {
			nodes += overlap(cur[0], cur[1]) / span
		}
	}
	return channels, nodes
}

// reversed returns b reversed: chain hashes are shown in RPC byte order.
func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}

// writeFile signs events in parallel and writes them in order.
func writeFile(ctx context.Context, n *Network, path string, events []event) (FileStats, error) {
	fs := FileStats{Name: filepath.Base(path)}
	msgs := make([][]byte, len(events))
	var (
		mu       sync.Mutex
		firstErr error
	)
	workers := n.Params.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bufs := make(chan *bytes.Buffer, workers)
	for range workers {
		bufs <- new(bytes.Buffer)
	}
	parallel(workers, len(events), func(i int) {
		if ctx.Err() != nil {
			return
		}
		buf := <-bufs
		b, err := n.message(&events[i], buf)
		bufs <- buf
		if err != nil {
			mu.Lock()
			firstErr = err
			mu.Unlock()
			return
		}
		msgs[i] = b
	})
	if firstErr != nil {
		return fs, firstErr
	}
	if err := ctx.Err(); err != nil {
		return fs, err
	}
	f, err := os.Create(path)
	if err != nil {
		return fs, fmt.Errorf("create %s: %w", fs.Name, err)
	}
	defer f.Close()
	w := gsp.NewWriter(f)
	for i := range events {
		e := &events[i]
		switch e.kind {
		case kindChannelAnn:
			fs.ChannelAnnouncements++
		case kindChannelUpd:
			fs.ChannelUpdates++
			if e.change == 0 && !e.fresh {
				fs.KeepAlives++
			}
		case kindNodeAnn:
			fs.NodeAnnouncements++
		}
		if err := w.Write(msgs[i], microTime(e.recv)); err != nil {
			return fs, fmt.Errorf("write %s: %w", fs.Name, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fs, fmt.Errorf("write %s: %w", fs.Name, err)
	}
	st, err := f.Stat()
	if err != nil {
		return fs, err
	}
	fs.Bytes = st.Size()
	if err := f.Close(); err != nil {
		return fs, fmt.Errorf("close %s: %w", fs.Name, err)
	}
	return fs, nil
}

func microTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

func writeChannels(n *Network, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create channels file: %w", err)
	}
	defer f.Close()
	w := csv.NewWriter(f)
	_ = w.Write([]string{"scid", "scid_bxtxo", "capacity_sat", "node_id_1", "node_id_2",
		"bitcoin_key_1", "bitcoin_key_2", "open_at", "close_at"})
	for _, ch := range n.Channels {
		_ = w.Write([]string{
			strconv.FormatUint(ch.SCID.ToUint64(), 10),
			fmt.Sprintf("%dx%dx%d", ch.SCID.BlockHeight, ch.SCID.TxIndex, ch.SCID.TxPosition),
			strconv.FormatUint(ch.CapacitySat, 10),
			hex.EncodeToString(n.Nodes[ch.Nodes[0]].ID[:]),
			hex.EncodeToString(n.Nodes[ch.Nodes[1]].ID[:]),
			hex.EncodeToString(ch.BitcoinKeys[0].PubKey().SerializeCompressed()),
			hex.EncodeToString(ch.BitcoinKeys[1].PubKey().SerializeCompressed()),
			strconv.FormatInt(ch.OpenAt, 10),
			strconv.FormatInt(ch.CloseAt, 10),
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("write channels file: %w", err)
	}
	return f.Close()
}
