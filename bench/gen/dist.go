package gen

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Reference figures of the 2025 Gossip Observer run 0926T195046
// (testdata/gossip-observer-2025): unique messages by type over 23.321 h.
const (
	observerHours         = 23.321011765555554
	observerChannelUpds   = 251298
	observerNodeAnns      = 125155
	observerDir           = "gossip-observer-2025"
	observerSCIDFreqFile  = "scid_frequency-counts.csv"
	observerNodeFreqFile  = "node_in_node_ann_freq-counts.csv"
	referenceChannels     = 50808 // 2026-02 CLN snapshot, the closest in time to the run
	referenceNodes        = 17324
	refreshInterval       = 13 * 24 * 3600 // keep-alive age (CLN and LND re-sign at ~13 days)
	refreshJitter         = 12 * 3600
	closeFinalDisableProb = 0.5
)

// ChannelUpdatesPerChannelDay is the mean channel_update rate the history
// targets: the observer's unique channel_updates per 24 h spread over the
// reference network. Multiply by the number of open channels for a daily
// total (≈258,600 at the 2026 snapshot's 50,808 channels).
const ChannelUpdatesPerChannelDay = observerChannelUpds * 24 / observerHours / referenceChannels

// NodeAnnouncementsPerNodeDay is the node_announcement counterpart of
// ChannelUpdatesPerChannelDay (≈7.4 per node and day).
const NodeAnnouncementsPerNodeDay = observerNodeAnns * 24 / observerHours / referenceNodes

// ChangeSet is the set of channel_update fields that differ from the
// previous update of the same direction.
type ChangeSet uint8

// Fields of a ChangeSet. The zero ChangeSet is a keep-alive.
const (
	ChangeDisable ChangeSet = 1 << iota
	ChangeCLTV
	ChangeHTLCMin
	ChangeHTLCMax
	ChangeFeeBase
	ChangeFeePPM
)

// ChangeSets is the empirical distribution of what changes between two
// consecutive channel_updates of one direction (distinct timestamps),
// counted from testdata/lnconv-2021/gossip_latest.csv.zst: 23,254 pairs
// over 10.9 h of 2021 mainnet gossip. TestChangeSetsMatchSource recounts
// it from the file.
var ChangeSets = []struct {
	Set   ChangeSet
	Count int
}{
	{ChangeDisable, 20180},
	{ChangeFeePPM, 1982},
	{ChangeFeeBase, 279},
	{ChangeFeeBase | ChangeFeePPM, 232},
	{ChangeHTLCMax, 150},
	{ChangeCLTV | ChangeHTLCMin | ChangeFeeBase | ChangeFeePPM, 115},
	{ChangeHTLCMax | ChangeFeePPM, 97},
	{0, 95},
	{ChangeHTLCMax | ChangeFeeBase, 26},
	{ChangeHTLCMin | ChangeHTLCMax | ChangeFeePPM, 23},
	{ChangeCLTV, 20},
	{ChangeCLTV | ChangeFeePPM, 19},
	{ChangeDisable | ChangeFeePPM, 11},
	{ChangeDisable | ChangeFeeBase, 6},
	{ChangeHTLCMax | ChangeFeeBase | ChangeFeePPM, 5},
	{ChangeCLTV | ChangeFeeBase | ChangeFeePPM, 5},
	{ChangeDisable | ChangeHTLCMax | ChangeFeePPM, 2},
	{ChangeCLTV | ChangeFeeBase, 2},
	{ChangeDisable | ChangeHTLCMax | ChangeFeeBase | ChangeFeePPM, 2},
	{ChangeDisable | ChangeFeeBase | ChangeFeePPM, 1},
	{ChangeHTLCMin | ChangeHTLCMax | ChangeFeeBase | ChangeFeePPM, 1},
	{ChangeDisable | ChangeHTLCMax, 1},
}

// ReceiveDelayQuantiles maps quantiles to the delay in seconds between a
// channel_update's timestamp and its first sighting, from the same 2021
// capture (78,034 updates; the few negative delays, clock skew, are
// clamped to 0). Delays are drawn by linear interpolation.
var ReceiveDelayQuantiles = [][2]float64{
	{0, 0}, {0.01, 0.2}, {0.02, 0.3}, {0.05, 0.6}, {0.10, 1.1}, {0.15, 4.5},
	{0.20, 13.6}, {0.25, 21.0}, {0.30, 28.6}, {0.35, 37.4}, {0.40, 47.5},
	{0.45, 58.5}, {0.50, 71.4}, {0.55, 87.1}, {0.60, 105.5}, {0.65, 128.2},
	{0.70, 154.7}, {0.75, 185.1}, {0.80, 219.3}, {0.85, 262.9}, {0.90, 319.9},
	{0.95, 405.8}, {0.98, 585.9}, {0.99, 762.3}, {0.995, 1106.9},
	{0.999, 2358.2}, {1, 3832.2},
}

// AddressMix is the share of nodes announcing each combination of address
// types, counted over the latest node_announcement of each of the 1,012
// nodes in lnresearch-gsp-2025 (TestAddressMixMatchesSource recounts it).
// The source holds no Tor v2 address (deprecated) and no DNS hostname; the
// generator never emits Tor v2 and adds a DNS hostname to DNSShare of the
// nodes that announce any address, so that consumers see every type.
var AddressMix = []struct {
	IPv4, IPv6, Tor bool
	Count           int
}{
	{false, false, true, 558},
	{true, false, true, 226},
	{true, false, false, 196},
	{true, true, true, 16},
	{false, false, false, 11},
	{true, true, false, 4},
	{false, true, true, 1},
}

// DNSShare is the share of addressed nodes that also announce a DNS
// hostname (BOLT 7 address type 5). Not measured: the source has none.
const DNSShare = 0.02

// NodeFeatureSets are the 14 most common node feature vectors (as bit
// lists) among the lnresearch-gsp-2025 nodes, with their node counts; the
// remaining 108 nodes' vectors are spread over them.
var NodeFeatureSets = []struct {
	Bits  []uint16
	Count int
}{
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 23, 25, 27, 31, 45, 55, 261, 2023}, 192},
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 23, 25, 27, 31, 45, 261, 2023}, 178},
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 19, 23, 25, 27, 31, 45, 55, 261, 2023}, 159},
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 19, 23, 25, 27, 31, 45, 47, 51, 55, 181, 261, 2023, 2025}, 115},
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 23, 25, 27, 31, 45, 55, 2023}, 43},
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 23, 25, 27, 31, 45, 2023}, 43},
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 19, 23, 25, 27, 31, 45, 261, 2023}, 42},
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 19, 23, 25, 27, 31, 45, 55, 2023}, 41},
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 19, 23, 25, 27, 31, 45, 2023}, 24},
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 19, 23, 25, 27, 31, 45, 55, 181, 261, 2023}, 20},
	{[]uint16{0, 5, 7, 9, 12, 14, 17, 23, 27, 31, 45, 2023}, 14},
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 19, 23, 25, 27, 31, 45, 47, 51, 55, 261, 2023}, 12},
	{[]uint16{0, 5, 7, 9, 12, 14, 17, 23, 27, 31, 45, 55, 2023}, 11},
	{[]uint16{0, 5, 7, 8, 12, 14, 17, 19, 23, 25, 27, 31, 45, 47, 51, 261, 2023}, 10},
}

// InboundFeeShare is the share of channel_updates in lnresearch-gsp-2025
// that carry the inbound-fee TLV 55555 (10,326 of 26,535). The generator
// gives it to that share of nodes.
const InboundFeeShare = 10326.0 / 26535

// InboundFees are the most common (base, ppm) inbound-fee pairs in the
// same source, with counts.
var InboundFees = []struct {
	Base, PPM int32
	Count     int
}{
	{0, 0, 4433}, {0, -20, 242}, {0, -200, 184}, {0, -1000, 117}, {0, -10, 60},
	{0, -100, 59}, {-400, -200, 57}, {0, -300, 56}, {0, -500, 50}, {0, -50, 39},
}

// Frequencies are per-day message counts of the SCIDs (or nodes) that sent
// at least one message during the observer run, sorted ascending.
type Frequencies []int

// LoadFrequencies reads the observer's per-SCID and per-node message
// counts from datasetsDir. Each file is a histogram, message_count and the
// number of senders (SCIDs or nodes) that sent that many.
func LoadFrequencies(datasetsDir string) (scid, node Frequencies, err error) {
	dir := filepath.Join(datasetsDir, observerDir)
	if scid, err = readCounts(filepath.Join(dir, observerSCIDFreqFile)); err != nil {
		return nil, nil, err
	}
	if node, err = readCounts(filepath.Join(dir, observerNodeFreqFile)); err != nil {
		return nil, nil, err
	}
	return scid, node, nil
}

func readCounts(path string) (Frequencies, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open frequencies: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !slices.Equal(head, []string{"message_count", "senders"}) {
		return nil, fmt.Errorf("%s: header %v, want message_count,senders", path, head)
	}
	var out Frequencies
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		n, err := strconv.Atoi(rec[0])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: bad count %q", path, rec[0])
		}
		k, err := strconv.Atoi(rec[1])
		if err != nil || k < 1 {
			return nil, fmt.Errorf("%s: bad sender count %q", path, rec[1])
		}
		for range k {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Mean is the average count.
func (f Frequencies) Mean() float64 {
	var s float64
	for _, v := range f {
		s += float64(v)
	}
	return s / float64(len(f))
}

// heavyLevel is the daily count from which a sender is active every day.
const heavyLevel = 10

// heavyNoise is the log-scale standard deviation of a heavy sender's daily
// count around its level.
const heavyNoise = 0.2

// senderModel turns a persistent rank into daily message counts such that
// (1) on any day the counts of the active senders follow the observed
// distribution f, (2) a share active of all senders is active, and (3)
// senders keep their level: those observed at heavyLevel or more a day
// send about that many every day, lighter ones send their level on a
// random subset of days. Light senders are over-represented among all
// senders by the inverse of their activity so that (1) holds.
type senderModel struct {
	f      Frequencies
	light  int     // number of observed senders below heavyLevel
	heavy  float64 // share of all senders that are heavy
	pLight float64 // daily activity of a light sender
}

func newSenderModel(f Frequencies, active float64) senderModel {
	light, _ := slices.BinarySearch(f, heavyLevel)
	mHi := 1 - float64(light)/float64(len(f))
	m := senderModel{f: f, light: light, heavy: active * mHi}
	m.pLight = min(1, active*(1-mHi)/(1-m.heavy))
	return m
}

// count draws one day's count for the sender of stratified rank base.
func (m senderModel) count(rng *rand.Rand, base float64) int {
	if base >= 1-m.heavy {
		u := (base - (1 - m.heavy)) / m.heavy
		level := float64(m.f[min(m.light+int(u*float64(len(m.f)-m.light)), len(m.f)-1)])
		return max(1, int(math.Round(level*math.Exp(heavyNoise*rng.NormFloat64()-heavyNoise*heavyNoise/2))))
	}
	if rng.Float64() >= m.pLight || m.light == 0 {
		return 0
	}
	u := base / (1 - m.heavy)
	return m.f[min(int(u*float64(m.light)), m.light-1)]
}

// delayCorrelation is the correlation (Gaussian copula) between the
// receive delays of messages from the same sender: they travel similar
// paths, so consecutive messages of one sender rarely overtake each other,
// and the delay distribution survives the rule that a sender's messages
// are received in timestamp order.
const delayCorrelation = 0.95

// lastActiveAgo draws how long before the start of the history the
// sender of rank base last sent a message, consistently with count:
// heavy senders within the last hour, light ones a geometric number of
// days back (at their daily activity), never beyond the refresh interval.
func (m senderModel) lastActiveAgo(rng *rand.Rand, base float64) int64 {
	if base >= 1-m.heavy {
		return 1 + rng.Int64N(3600)
	}
	days := int64(0)
	if m.pLight < 1 {
		days = int64(math.Log(1-rng.Float64()) / math.Log(1-m.pLight))
	}
	return min(days*86400+1+rng.Int64N(86400), refreshInterval-rng.Int64N(refreshJitter))
}

// receiveDelay draws a receive delay in microseconds for a sender whose
// persistent standard-normal delay factor is z.
func receiveDelay(rng *rand.Rand, z float64) int64 {
	x := delayCorrelation*z + math.Sqrt(1-delayCorrelation*delayCorrelation)*rng.NormFloat64()
	u := min(0.5*(1+math.Erf(x/math.Sqrt2)), 1-1e-12)
	q := ReceiveDelayQuantiles
	i := quantileIndex(q, u)
	a, b := q[i-1], q[i]
	s := a[1] + (b[1]-a[1])*(u-a[0])/(b[0]-a[0])
	return int64(math.Round(s * 1e6))
}

// quantileIndex returns the first index whose quantile is above u (never 0).
func quantileIndex(q [][2]float64, u float64) int {
	i, _ := slices.BinarySearchFunc(q, u, func(e [2]float64, u float64) int {
		if e[0] <= u {
			return -1
		}
		return 1
	})
	return max(i, 1)
}

// weighted picks an index with probability proportional to weight(i).
func weighted(rng *rand.Rand, n int, weight func(int) int) int {
	total := 0
	for i := range n {
		total += weight(i)
	}
	x := rng.IntN(total)
	for i := range n {
		x -= weight(i)
		if x < 0 {
			return i
		}
	}
	return n - 1
}
