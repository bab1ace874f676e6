package rgs

import "errors"

// Sentinel errors. Decode and Encode wrap them with the position or the entry at
// fault; test for them with errors.Is.
var (
	// ErrUnknownVersion reports a file whose magic is not "LDK" or whose version
	// is neither 1 nor 2, or an encode request for such a version.
	ErrUnknownVersion = errors.New("unknown rgs version")
	// ErrShortRead reports a read past the end of the input, or an address that
	// parses but leaves bytes unread inside its length window.
	ErrShortRead = errors.New("short read")
	// ErrInvalidValue reports a value a client refuses: a non-minimal BigSize, an
	// SCID overflow, a node index out of range, a default feature marker past the
	// default list, an invalid node id, a malformed funding amount.
	ErrInvalidValue = errors.New("invalid value")
	// ErrNonsenseCount reports a node or update count above the client's cap.
	ErrNonsenseCount = errors.New("nonsense count")
	// ErrSameNode reports a channel announcement whose two node ids are equal;
	// every client rejects the whole file.
	ErrSameNode = errors.New("channel announced with itself")
	// ErrNodeOrder reports a channel announcement whose node_id_1 is not strictly
	// below node_id_2; current clients reject the whole file.
	ErrNodeOrder = errors.New("node ids not ascending")
	// ErrChainHash reports a file for another chain than the one expected.
	ErrChainHash = errors.New("chain hash mismatch")
	// ErrStale reports a file more than two weeks older than the current time.
	ErrStale = errors.New("rgs data more than two weeks old")
	// ErrUnsorted reports Delta entries out of the order the format requires.
	ErrUnsorted = errors.New("entries not sorted")
	// ErrDuplicate reports two Delta entries for the same key.
	ErrDuplicate = errors.New("duplicate entry")
	// ErrInvalidDelta reports any other Delta content that cannot be encoded.
	ErrInvalidDelta = errors.New("invalid delta")
)
