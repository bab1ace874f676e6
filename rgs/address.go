package rgs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/tor"
)

// BOLT 7 address descriptor types.
const (
	AddrIPv4     = 1
	AddrIPv6     = 2
	AddrTorV2    = 3
	AddrTorV3    = 4
	AddrHostname = 5
)

// Address is one BOLT 7 address descriptor: the type byte followed by its payload,
// exactly as a node announced it. Keeping the bytes (rather than a parsed net.Addr)
// makes encoding lossless; NewAddress and NetAddr convert from and to the lnwire
// address types. RGS frames each descriptor with its own u8 length.
type Address []byte

// DNSAddr is a BOLT 7 DNS hostname address (type 5), which lnwire does not model.
type DNSAddr struct {
	Hostname string
	Port     uint16
}

// Network returns "tcp".
func (a *DNSAddr) Network() string { return "tcp" }

// String returns host:port.
func (a *DNSAddr) String() string {
	return net.JoinHostPort(a.Hostname, strconv.Itoa(int(a.Port)))
}

// NewAddress encodes a net.Addr as a descriptor. It accepts *net.TCPAddr (IPv4 or
// IPv6), *tor.OnionAddr (v2 or v3), *lnwire.OpaqueAddrs (written verbatim) and
// *DNSAddr.
func NewAddress(a net.Addr) (Address, error) {
	var buf bytes.Buffer
	var err error
	switch a := a.(type) {
	case *net.TCPAddr:
		err = lnwire.WriteTCPAddr(&buf, a)
	case *tor.OnionAddr:
		err = lnwire.WriteOnionAddr(&buf, a)
	case *lnwire.OpaqueAddrs:
		err = lnwire.WriteOpaqueAddrs(&buf, a)
	case *DNSAddr:
		if len(a.Hostname) > 255 {
			return nil, fmt.Errorf("hostname of %d bytes: %w", len(a.Hostname), ErrInvalidValue)
		}
		buf.WriteByte(AddrHostname)
		buf.WriteByte(byte(len(a.Hostname)))
		buf.WriteString(a.Hostname)
		buf.Write(binary.BigEndian.AppendUint16(nil, a.Port))
	default:
		return nil, fmt.Errorf("address type %T: %w", a, ErrInvalidValue)
	}
	if err != nil {
		return nil, fmt.Errorf("encode address %v: %w", a, err)
	}
	return Address(buf.Bytes()), nil
}

// Type returns the descriptor type byte, or 0 for an empty descriptor.
func (a Address) Type() uint8 {
	if len(a) == 0 {
		return 0
	}
	return a[0]
}

// payloadLen returns the payload length LDK reads for a, and whether LDK can
// parse a at all (known type, long enough, valid hostname).
func (a Address) payloadLen() (int, bool) {
	if len(a) == 0 {
		return 0, false
	}
	n, ok := descriptorLen(a)
	if !ok || (a[0] == AddrHostname && !validHostname(a[2:n-2])) {
		return 0, false
	}
	return n - 1, true
}

// validHostname reports whether LDK accepts h as a Hostname: ASCII letters,
// digits, '.', '-' and '_'.
func validHostname(h []byte) bool {
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// Usable reports whether an LDK client parses a and keeps it. Unusable
// descriptors (unknown type, truncated, bad hostname) are skipped by clients
// without error.
func (a Address) Usable() bool {
	n, ok := a.payloadLen()
	return ok && n == len(a)-1
}

// check returns an error when a client would reject the whole file because of a:
// it parses but leaves bytes unread inside its window.
func (a Address) check() error {
	if n, ok := a.payloadLen(); ok && n != len(a)-1 {
		return fmt.Errorf("address %x: %d bytes left in window: %w", []byte(a), len(a)-1-n, ErrShortRead)
	}
	return nil
}

// NetAddr parses a with lnwire: *net.TCPAddr, *tor.OnionAddr, *DNSAddr, or
// *lnwire.OpaqueAddrs for types neither knows.
func (a Address) NetAddr() (net.Addr, error) {
	if !a.Usable() {
		if len(a) == 0 {
			return nil, fmt.Errorf("empty address: %w", ErrInvalidValue)
		}
		if a[0] >= AddrIPv4 && a[0] <= AddrHostname {
			return nil, fmt.Errorf("address %x: %w", []byte(a), ErrInvalidValue)
		}
		return &lnwire.OpaqueAddrs{Payload: append([]byte(nil), a...)}, nil
	}
	if a[0] == AddrHostname {
		n := int(a[1])
		return &DNSAddr{
			Hostname: string(a[2 : 2+n]),
			Port:     binary.BigEndian.Uint16(a[2+n:]),
		}, nil
	}
	framed := make([]byte, 2, 2+len(a))
	binary.BigEndian.PutUint16(framed, uint16(len(a)))
	framed = append(framed, a...)
	var addrs []net.Addr
	if err := lnwire.ReadElement(bytes.NewReader(framed), &addrs); err != nil {
		return nil, fmt.Errorf("parse address %x: %w", []byte(a), err)
	}
	if len(addrs) != 1 {
		return nil, fmt.Errorf("address %x: %d addresses: %w", []byte(a), len(addrs), ErrInvalidValue)
	}
	return addrs[0], nil
}

// TypeName names the descriptor type.
func (a Address) TypeName() string {
	switch a.Type() {
	case AddrIPv4:
		return "ipv4"
	case AddrIPv6:
		return "ipv6"
	case AddrTorV2:
		return "torv2"
	case AddrTorV3:
		return "torv3"
	case AddrHostname:
		return "dns"
	}
	return "unknown"
}

// String returns host:port for a usable address, else the descriptor in hex.
func (a Address) String() string {
	if a.Usable() {
		if na, err := a.NetAddr(); err == nil {
			return na.String()
		}
	}
	return hex.EncodeToString(a)
}

type addressJSON struct {
	Type       string `json:"type"`
	Descriptor string `json:"descriptor"`
	Address    string `json:"address,omitempty"`
	Usable     bool   `json:"usable"`
}

// MarshalJSON describes the address: type name, descriptor hex, host:port when
// usable, and whether clients keep it.
func (a Address) MarshalJSON() ([]byte, error) {
	j := addressJSON{Type: a.TypeName(), Descriptor: hex.EncodeToString(a), Usable: a.Usable()}
	if j.Usable {
		j.Address = a.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the descriptor back.
func (a *Address) UnmarshalJSON(b []byte) error {
	var j addressJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	v, err := hex.DecodeString(j.Descriptor)
	*a = v
	return err
}
