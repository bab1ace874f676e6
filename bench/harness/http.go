package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// HTTPConfig sets up the comparison of lnsync's snapshot routes with nginx
// serving the same generation's static tree.
type HTTPConfig struct {
	// Snapshots is the snapshot directory (with current/static/).
	Snapshots string
	// Reference is the generation's reference time.
	Reference int64
	// Serve starts lnsync's HTTP server on the address given as the last
	// argument; it must print a line ending in the address once listening.
	Serve []string
	// WorkDir receives nginx's configuration, logs and the wrk script.
	WorkDir     string
	Connections []int
	Rounds      int
	Duration    time.Duration
	Threads     int
}

// HTTPRun is one wrk run against one server.
type HTTPRun struct {
	Server      string  `json:"server"`
	Connections int     `json:"connections"`
	Round       int     `json:"round"`
	Requests    int64   `json:"requests"`
	PerSecond   float64 `json:"requests_per_second"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	// CPUMicros is the server's user+system CPU time per request: unlike
	// req/s it does not depend on what else the host runs (wrk shares it).
	CPUMicros float64 `json:"cpu_us_per_request"`
}

// Mix returns the request mix of the HTTP comparison: clients polling every
// few hours ask for recent grid points most often, a few come back after
// days, a few start from scratch; half v1, half v2.
func Mix(ref int64) []string {
	const h = 10800
	weights := []struct {
		back int64
		n    int
	}{{0, 6}, {1, 6}, {2, 3}, {3, 2}, {4, 2}, {8, 2}, {16, 1}, {56, 1}, {-1, 1}}
	var out []string
	for _, w := range weights {
		ts := ref - w.back*h
		if w.back < 0 {
			ts = 0
		}
		for range w.n {
			out = append(out, fmt.Sprintf("/snapshot/%d.bin", ts), fmt.Sprintf("/snapshot/v2/%d.bin", ts))
		}
	}
	return out
}

// CompareHTTP starts lnsync and nginx on loopback, checks that both answer
// every path of the mix with the same bytes (identity and gzip), then runs
// wrk against each, alternating which goes first per round.
func CompareHTTP(ctx context.Context, cfg HTTPConfig) ([]HTTPRun, error) {
	for _, tool := range []string{"nginx", "wrk"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is not installed (make bench installs it from Debian)", tool)
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.WorkDir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	lnsyncAddr, lnsyncPID, stopLnsync, err := startServer(ctx, cfg.Serve)
	if err != nil {
		return nil, err
	}
	defer stopLnsync()
	nginxAddr, nginxPIDs, stopNginx, err := startNginx(ctx, cfg.WorkDir, filepath.Join(cfg.Snapshots, "current", "static"))
	if err != nil {
		return nil, err
	}
	defer stopNginx()

	mix := Mix(cfg.Reference)
	if err := sameAnswers(ctx, mix, "http://"+lnsyncAddr, "http://"+nginxAddr); err != nil {
		return nil, err
	}
	script := filepath.Join(cfg.WorkDir, "mix.lua")
	if err := os.WriteFile(script, wrkScript(mix), 0o644); err != nil {
		return nil, err
	}
	var runs []HTTPRun
	for _, conns := range cfg.Connections {
		for round := 1; round <= cfg.Rounds; round++ {
			order := []string{"lnsync", "nginx"}
			if round%2 == 0 {
				order = []string{"nginx", "lnsync"}
			}
			for _, server := range order {
				addr, pids := lnsyncAddr, []int{lnsyncPID}
				if server == "nginx" {
					addr, pids = nginxAddr, nginxPIDs
				}
				before, err := cpuTicks(pids)
				if err != nil {
					return nil, err
				}
				r, err := runWrk(ctx, "http://"+addr, script, conns, cfg.Threads, cfg.Duration)
				if err != nil {
					return nil, fmt.Errorf("wrk against %s: %w", server, err)
				}
				after, err := cpuTicks(pids)
				if err != nil {
					return nil, err
				}
				r.Server, r.Connections, r.Round = server, conns, round
				if r.Requests > 0 {
					r.CPUMicros = float64(after-before) / clockTicks * 1e6 / float64(r.Requests)
				}
				runs = append(runs, r)
			}
		}
	}
	return runs, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat CPU times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// cpuTicks sums utime and stime of the processes.
func cpuTicks(pids []int) (int64, error) {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// The command name (field 2) may hold spaces; fields after it are
		// plain.
		rest := b[bytes.LastIndexByte(b, ')')+2:]
		f := strings.Fields(string(rest))
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
		}
		for _, s := range f[11:13] { // utime, stime
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, err
			}
			total += v
		}
	}
	return total, nil
}

// startServer runs args with a free loopback address appended and waits
// for the line announcing it.
func startServer(ctx context.Context, args []string) (addr string, pid int, stop func(), err error) {
	addr, err = freeAddr()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.CommandContext(ctx, args[0], append(args[1:], addr)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasSuffix(strings.TrimSpace(line), addr) {
		stop()
		return "", 0, nil, fmt.Errorf("%s did not start: %q %v", args[0], line, err)
	}
	go io.Copy(io.Discard, stdout)
	return addr, cmd.Process.Pid, stop, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startNginx serves root under /snapshot/ with gzip_static, so that nginx
// answers /snapshot/{ts}.bin and /snapshot/v2/{ts}.bin from the files lnsync
// serves (the static tree of a generation names every grid point).
func startNginx(ctx context.Context, dir, root string) (addr string, workers []int, stop func(), err error) {
	addr, err = freeAddr()
	if err != nil {
		return "", nil, nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, nil, err
	}
	conf := fmt.Sprintf(`worker_processes 2;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	types { }
	default_type application/octet-stream;
	gzip_static on;
	open_file_cache max=10000 inactive=30s;
	open_file_cache_valid 5s;
	client_body_temp_path %[1]s/tmp;
	proxy_temp_path %[1]s/tmp;
	fastcgi_temp_path %[1]s/tmp;
	uwsgi_temp_path %[1]s/tmp;
	scgi_temp_path %[1]s/tmp;
	server {
		listen %[2]s;
		location /snapshot/ {
			alias %[3]s/;
		}
	}
}
`, abs, addr, root)
	confPath := filepath.Join(abs, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return "", nil, nil, err
	}
	cmd := exec.CommandContext(ctx, "nginx", "-p", abs, "-c", confPath, "-e", filepath.Join(abs, "error.log"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, nil, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/snapshot/0.bin")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, nil, fmt.Errorf("nginx did not serve %s/0.bin (see %s/error.log)", root, abs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err != nil {
		stop()
		return "", nil, nil, err
	}
	for _, f := range strings.Fields(string(children)) {
		pid, _ := strconv.Atoi(f)
		workers = append(workers, pid)
	}
	if len(workers) == 0 {
		stop()
		return "", nil, nil, errors.New("nginx has no worker processes")
	}
	return addr, workers, stop, nil
}

// sameAnswers checks that both servers answer every path with the same
// bytes, with and without gzip.
func sameAnswers(ctx context.Context, paths []string, a, b string) error {
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 30 * time.Second}
	get := func(base, path, enc string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept-Encoding", enc)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s%s: %s", base, path, resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
	for _, p := range paths {
		for _, enc := range []string{"identity", "gzip"} {
			x, err := get(a, p, enc)
			if err != nil {
				return err
			}
			y, err := get(b, p, enc)
			if err != nil {
				return err
			}
			if !bytes.Equal(x, y) {
				return fmt.Errorf("lnsync and nginx answer %s (%s) differently: %d and %d bytes", p, enc, len(x), len(y))
			}
		}
	}
	return nil
}

// wrkScript cycles through the paths, asking for gzip as LDK clients do.
func wrkScript(paths []string) []byte {
	var b bytes.Buffer
	b.WriteString("local paths = {\n")
	for _, p := range paths {
		fmt.Fprintf(&b, "  %q,\n", p)
	}
	b.WriteString(`}
local headers = {["Accept-Encoding"] = "gzip"}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], headers)
end
`)
	return b.Bytes()
}

func runWrk(ctx context.Context, url, script string, conns, threads int, d time.Duration) (HTTPRun, error) {
	cmd := exec.CommandContext(ctx, "wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(int(d.Seconds()))+"s", "--latency", "-s", script, url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return HTTPRun{}, fmt.Errorf("%w: %s", err, out)
	}
	return parseWrk(out)
}

// parseWrk reads requests, req/s and the 50% and 99% latencies from wrk's
// --latency output, and fails on non-2xx answers or socket errors.
func parseWrk(out []byte) (HTTPRun, error) {
	var r HTTPRun
	var haveRate, have50, have99 bool
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case strings.HasPrefix(line, "  Non-2xx or 3xx responses:"), f[0] == "Socket" && len(f) > 1 && f[1] == "errors:":
			return r, fmt.Errorf("wrk saw errors: %s", strings.TrimSpace(line))
		case f[0] == "Requests/sec:" && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, err
			}
			r.PerSecond, haveRate = v, true
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			v, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, err
			}
			r.Requests = v
		case (f[0] == "50%" || f[0] == "99%") && len(f) == 2:
			ms, err := wrkMillis(f[1])
			if err != nil {
				return r, err
			}
			if f[0] == "50%" {
				r.P50Ms, have50 = ms, true
			} else {
				r.P99Ms, have99 = ms, true
			}
		}
	}
	if !haveRate || !have50 || !have99 || r.Requests == 0 {
		return r, fmt.Errorf("unexpected wrk output:\n%s", out)
	}
	return r, nil
}

// wrkMillis converts wrk's "950.12us", "3.21ms", "1.02s" or "2.00m" to
// milliseconds.
func wrkMillis(s string) (float64, error) {
	num, scale := s, 0.0
	switch {
	case strings.HasSuffix(s, "us"):
		num, scale = s[:len(s)-2], -1000 // divided: exact for "950.00us"
	case strings.HasSuffix(s, "ms"):
		num, scale = s[:len(s)-2], 1
	case strings.HasSuffix(s, "s"):
		num, scale = s[:len(s)-1], 1000
	case strings.HasSuffix(s, "m"):
		num, scale = s[:len(s)-1], 60_000
	default:
		return 0, fmt.Errorf("wrk latency %q: unknown unit", s)
	}
	x, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("wrk latency %q: %w", s, err)
	}
	if scale < 0 {
		return x / -scale, nil
	}
	return x * scale, nil
}
