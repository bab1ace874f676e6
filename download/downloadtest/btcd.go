package downloadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"
)

// btcdRPCUser and btcdRPCPass guard btcd's RPC port, which only listens on
// 127.0.0.1 for the life of one test.
const (
	btcdRPCUser = "lnsync"
	btcdRPCPass = "lnsync"
)

// btcd is the regtest chain backend shared by all nodes of a Network.
type btcd struct {
	bin      string
	dir      string
	home     string
	rpcAddr  string
	certPath string
	proc     *process
	client   *http.Client
	id       atomic.Int64
}

func newBtcd(bin, dir, home string, rpcPort int) *btcd {
	return &btcd{
		bin:      bin,
		dir:      dir,
		home:     home,
		rpcAddr:  hostPort(rpcPort),
		certPath: filepath.Join(dir, "rpc.cert"),
	}
}

// start launches btcd, mining to miningAddrs if any, and waits until its RPC
// server answers. btcd keeps its chain in dir across restarts.
func (b *btcd) start(ctx context.Context, miningAddrs []string) error {
	conf := filepath.Join(b.dir, "btcd.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return fmt.Errorf("start btcd: %w", err)
	}
	args := []string{
		"--regtest",
		"--nolisten",
		"--txindex",
		"--configfile=" + conf,
		"--datadir=" + filepath.Join(b.dir, "data"),
		"--logdir=" + filepath.Join(b.dir, "logs"),
		"--rpclisten=" + b.rpcAddr,
		"--rpcuser=" + btcdRPCUser,
		"--rpcpass=" + btcdRPCPass,
		"--rpccert=" + b.certPath,
		"--rpckey=" + filepath.Join(b.dir, "rpc.key"),
		"--debuglevel=info",
	}
	for _, addr := range miningAddrs {
		args = append(args, "--miningaddr="+addr)
	}
	p, err := startProcess("btcd", b.bin, args, b.home, filepath.Join(b.dir, "btcd.log"))
	if err != nil {
		return err
	}
	b.proc = p

	// btcd writes its TLS certificate before it serves RPC; wait for both.
	err = poll(ctx, 100*time.Millisecond, func() (bool, error) {
		if exited, err := p.exited(); exited {
			return false, fmt.Errorf("btcd: %w", err)
		}
		if b.client == nil {
			pem, err := os.ReadFile(b.certPath)
			if err != nil || len(pem) == 0 {
				return false, nil
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return false, nil
			}
			b.client = &http.Client{
				Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
				Timeout:   2 * time.Minute,
			}
		}
		_, err := b.blockCount(ctx)
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for btcd RPC: %w", err)
	}
	return nil
}

// stop stops btcd and forgets its RPC client so that start can run again.
func (b *btcd) stop() error {
	if b.proc == nil {
		return nil
	}
	err := b.proc.stop()
	b.proc = nil
	if b.client != nil {
		b.client.CloseIdleConnections()
	}
	b.client = nil
	return err
}

// call makes one JSON-RPC call and decodes its result into out, if not nil.
func (b *btcd) call(ctx context.Context, out any, method string, params ...any) error {
	if b.client == nil {
		return errors.New("btcd is not running")
	}
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{
		"jsonrpc": "1.0",
		"id":      b.id.Add(1),
		"method":  method,
		"params":  params,
	})
	if err != nil {
		return fmt.Errorf("btcd %s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+b.rpcAddr, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("btcd %s: %w", method, err)
	}
	req.SetBasicAuth(btcdRPCUser, btcdRPCPass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("btcd %s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("btcd %s: %w", method, err)
	}
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return fmt.Errorf("btcd %s: HTTP %d: %q", method, resp.StatusCode, tail(raw, 3))
	}
	if reply.Error != nil {
		return fmt.Errorf("btcd %s: %s (code %d)", method, reply.Error.Message, reply.Error.Code)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(reply.Result, out); err != nil {
		return fmt.Errorf("btcd %s: decode result: %w", method, err)
	}
	return nil
}

func (b *btcd) blockCount(ctx context.Context) (int64, error) {
	var n int64
	err := b.call(ctx, &n, "getblockcount")
	return n, err
}

func (b *btcd) generate(ctx context.Context, n int) ([]string, error) {
	var hashes []string
	err := b.call(ctx, &hashes, "generate", n)
	return hashes, err
}

func (b *btcd) mempool(ctx context.Context) ([]string, error) {
	var txids []string
	err := b.call(ctx, &txids, "getrawmempool")
	return txids, err
}

// btcdHomeDir returns the directory btcd creates at start-up whatever its
// flags say. btcd v0.24 finds it through the user database rather than $HOME,
// so the HOME given to child processes cannot redirect it.
func btcdHomeDir() string {
	home := os.Getenv("HOME")
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		home = u.HomeDir
	}
	if home == "" {
		return ""
	}
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Application Support", "Btcd")
	}
	return filepath.Join(home, ".btcd")
}

// removeStrayHome returns a function that removes btcd's home directory if it
// does not exist now and is still empty when called, so that the harness
// leaves the user's home as it found it. A directory someone else fills in
// the meantime stays.
func removeStrayHome() func() error {
	dir := btcdHomeDir()
	if dir == "" {
		return func() error { return nil }
	}
	if _, err := os.Stat(dir); err == nil {
		return func() error { return nil }
	}
	return func() error {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) > 0 {
			return nil
		}
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove btcd home %s: %w", dir, err)
		}
		return nil
	}
}
