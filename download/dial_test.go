package download_test

import (
	"net"
	"testing"
	"time"

	"github.com/lnsync/lnsync/config"
	"github.com/lnsync/lnsync/download"
)

// A peer nothing listens for is retried with backoff, and its state says so:
// no connection, dial failures counted, the last error and the next attempt.
func TestUnreachablePeerState(t *testing.T) {
	t.Parallel()
	// A loopback port that was just free: connections are refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env := startDownloader(t, download.Config{
		Peers:      []config.Peer{{PubKey: pub33(newKey(t)), Addr: addr}},
		BackoffMin: 20 * time.Millisecond, BackoffMax: 40 * time.Millisecond,
	})
	deadline := time.Now().Add(20 * time.Second)
	var st download.PeerStatus
	for {
		st = env.d.Status()[0]
		if st.DialFailures >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer state after 20s: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.Connected || st.Addr != addr || st.LastError == "" || st.NextAttempt.IsZero() {
		t.Errorf("state of an unreachable peer: %+v", st)
	}
	if env.d.ConnectedPeers() != 0 {
		t.Errorf("%d peers connected", env.d.ConnectedPeers())
	}
}
