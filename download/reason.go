package download

import "sync/atomic"

// Reason is the verdict on one delivered message: ReasonOK or why it was
// dropped. The set is closed; Reasons lists it.
type Reason uint8

// The verdicts. Every delivered gossip message gets exactly one.
const (
	ReasonOK                  Reason = iota // valid and new: stored
	ReasonDuplicate                         // the same bytes were seen before (valid or not)
	ReasonMalformed                         // does not decode as its type
	ReasonUnknownType                       // not a gossip message we know
	ReasonOversized                         // longer than MaxGossipSize
	ReasonWrongChain                        // chain_hash of another network
	ReasonBadSignature                      // a signature does not verify
	ReasonNodeOrder                         // channel_announcement with node_id_1 >= node_id_2
	ReasonUnknownChannel                    // channel_update whose channel was never announced in time
	ReasonNoChannel                         // node_announcement of a node without a channel in time
	ReasonTooNew                            // timestamp more than a day ahead of the clock
	ReasonTooOld                            // timestamp more than two weeks behind the clock
	ReasonMissingHTLCMax                    // channel_update without htlc_maximum_msat
	ReasonHTLCMaxInvalid                    // htlc_maximum_msat above 21 million BTC
	ReasonHTLCMaxOverCapacity               // htlc_maximum_msat above the known channel capacity
	ReasonFundingInvalid                    // the chain has no 2-of-2 output of the announcement's bitcoin keys at its scid
	ReasonWaiting                           // imported without its channel: stored to wait for the announcement, not served
	numReasons
)

var reasonNames = [numReasons]string{
	"ok", "duplicate", "malformed", "unknown_type", "oversized", "wrong_chain", "bad_signature",
	"node_order", "unknown_channel", "no_channel", "too_new", "too_old", "missing_htlc_max",
	"htlc_max_invalid", "htlc_max_exceeds_capacity", "funding_invalid", "waiting",
}

// String returns the reason's metric label, e.g. "bad_signature".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "invalid"
}

// Reasons returns every Reason in order.
func Reasons() []Reason {
	out := make([]Reason, numReasons)
	for i := range out {
		out[i] = Reason(i)
	}
	return out
}

// garbage reports whether the reason shows the sender is broken or hostile,
// as opposed to merely late or out of date (which honest peers are).
func (r Reason) garbage() bool {
	switch r {
	case ReasonMalformed, ReasonUnknownType, ReasonOversized, ReasonWrongChain, ReasonBadSignature, ReasonNodeOrder,
		ReasonHTLCMaxInvalid:
		return true
	}
	return false
}

// Kind groups messages for counting: the three gossip types and everything else.
type Kind uint8

// The kinds of message counted.
const (
	KindChannelAnnouncement Kind = iota
	KindNodeAnnouncement
	KindChannelUpdate
	KindOther
	numKinds
)

var kindNames = [numKinds]string{"channel_announcement", "node_announcement", "channel_update", "other"}

// String returns the kind's metric label.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "invalid"
}

func kindOf(msgType uint16) Kind {
	switch msgType {
	case msgChannelAnnouncement:
		return KindChannelAnnouncement
	case msgNodeAnnouncement:
		return KindNodeAnnouncement
	case msgChannelUpdate:
		return KindChannelUpdate
	}
	return KindOther
}

// Verdicts counts delivered messages by kind and reason. The zero value is
// empty.
type Verdicts [numKinds][numReasons]int64

// Get returns the count for one kind and reason.
func (v Verdicts) Get(k Kind, r Reason) int64 { return v[k][r] }

// Reason returns the count of a reason over all kinds.
func (v Verdicts) Reason(r Reason) int64 {
	var n int64
	for k := range numKinds {
		n += v[k][r]
	}
	return n
}

// Total returns the number of messages counted.
func (v Verdicts) Total() int64 {
	var n int64
	for k := range numKinds {
		for r := range numReasons {
			n += v[k][r]
		}
	}
	return n
}

// Map returns the non-zero counts keyed "kind/reason", for logs and reports.
func (v Verdicts) Map() map[string]int64 {
	m := make(map[string]int64)
	for k := range numKinds {
		for r := range numReasons {
			if v[k][r] != 0 {
				m[k.String()+"/"+r.String()] = v[k][r]
			}
		}
	}
	return m
}

// verdictCounters is the concurrent form of Verdicts.
type verdictCounters [numKinds][numReasons]atomic.Int64

func (c *verdictCounters) add(k Kind, r Reason) { c[k][r].Add(1) }

func (c *verdictCounters) snapshot() Verdicts {
	var v Verdicts
	for k := range numKinds {
		for r := range numReasons {
			v[k][r] = c[k][r].Load()
		}
	}
	return v
}

// Sub returns the counts in v that are not in before.
func (v Verdicts) Sub(before Verdicts) Verdicts {
	for k := range numKinds {
		for r := range numReasons {
			v[k][r] -= before[k][r]
		}
	}
	return v
}
