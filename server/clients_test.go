package server

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestClientOf(t *testing.T) {
	l := newClientLimiter(ClientLimits{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	tests := []struct {
		remote, xff, want string
	}{
		{"203.0.113.5:1234", "", "203.0.113.5"},
		{"203.0.113.5:1234", "198.51.100.1", "203.0.113.5"}, // not from a proxy: the header is ignored
		{"10.1.2.3:80", "198.51.100.1", "198.51.100.1"},
		{"10.1.2.3:80", "6.6.6.6, 198.51.100.1", "198.51.100.1"},  // the left part is the client's to forge
		{"10.1.2.3:80", "198.51.100.1, 10.9.9.9", "198.51.100.1"}, // through two proxies
		{"10.1.2.3:80", "garbage, 198.51.100.1", "198.51.100.1"},  // right-most first
		{"10.1.2.3:80", "198.51.100.1, garbage", "10.1.2.3"},      // a malformed hop: the proxy
		{"10.1.2.3:80", "", "10.1.2.3"},                           // no header: the proxy
		{"[::1]:80", "2001:db8::7", "2001:db8::7"},
		{"[::ffff:203.0.113.9]:80", "", "203.0.113.9"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := l.clientOf(r); got.String() != tt.want {
			t.Errorf("remote %s, X-Forwarded-For %q: client %s, want %s", tt.remote, tt.xff, got, tt.want)
		}
	}
}

func TestClientLimiter(t *testing.T) {
	l := newClientLimiter(ClientLimits{InFlight: 2, PerMinute: 3})
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	now := time.Unix(1_800_000_000, 0)
	for i := range 2 {
		if ok, _ := l.acquire(a, now); !ok {
			t.Fatalf("computation %d refused", i)
		}
	}
	if ok, retry := l.acquire(a, now); ok || retry <= 0 {
		t.Errorf("third at once: ok=%v retry=%v; want refused with a wait", ok, retry)
	}
	if ok, _ := l.acquire(b, now); !ok {
		t.Error("another client refused")
	}
	l.release(a)
	if ok, _ := l.acquire(a, now); !ok {
		t.Error("refused after a release, with a token left")
	}
	l.release(a)
	l.release(a)
	ok, retry := l.acquire(a, now) // the bucket (3) is empty now
	if ok || retry < 19*time.Second || retry > 21*time.Second {
		t.Errorf("fourth in a minute: ok=%v retry=%v; want refused for 20s", ok, retry)
	}
	if ok, _ := l.acquire(a, now.Add(20*time.Second)); !ok {
		t.Error("refused 20s later, when a token is back")
	}
}
