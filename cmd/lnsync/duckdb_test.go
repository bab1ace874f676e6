package main

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// duckDBDir is the Node package that runs DuckDB for the tests (query.mjs);
// `make test-deps` installs its node_modules with npm ci.
const duckDBDir = "testdata/duckdb"

// duckDBResult is the result of one statement: its column names and its rows,
// every value as text and SQL NULL as "NULL".
type duckDBResult struct {
	Columns []string
	Rows    [][]string
}

// runDuckDB runs statements in order on one in-memory DuckDB database and
// returns their results. It fails the test, naming the install command, when
// Node.js or the DuckDB package is missing.
func runDuckDB(t *testing.T, statements ...string) []duckDBResult {
	t.Helper()
	pkg := filepath.Join(duckDBDir, "node_modules", "@duckdb", "node-api", "package.json")
	if _, err := os.Stat(pkg); err != nil {
		t.Fatalf("DuckDB not installed: run `make test-deps` or `npm ci --prefix cmd/lnsync/%s` (%v)", duckDBDir, err)
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node.js not found, needed to run DuckDB: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), nodeBin, append([]string{"query.mjs"}, statements...)...)
	cmd.Dir = duckDBDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run query.mjs: %v\n%s", err, stderr.Bytes())
	}
	var out struct {
		Results []struct {
			Columns []string    `json:"columns"`
			Rows    [][]*string `json:"rows"`
		} `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("parse query.mjs output: %v\n%s", err, stdout.Bytes())
	}
	if len(out.Results) != len(statements) {
		t.Fatalf("query.mjs returned %d results for %d statements", len(out.Results), len(statements))
	}
	results := make([]duckDBResult, len(out.Results))
	for i, r := range out.Results {
		results[i].Columns = r.Columns
		for _, row := range r.Rows {
			text := make([]string, len(row))
			for j, v := range row {
				text[j] = "NULL"
				if v != nil {
					text[j] = *v
				}
			}
			results[i].Rows = append(results[i].Rows, text)
		}
	}
	return results
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// duckDBTable describes one exported file to DuckDB: the types DuckDB must
// infer from the Parquet file, how to read the CSV file into the same types,
// and aggregates that must come out the same from both files and from what
// the test stored.
type duckDBTable struct {
	name string
	// columns are the column names and DuckDB types, in order. The CSV file
	// is read with these types, hex columns (BLOB) as VARCHAR and unhexed.
	columns [][2]string
	// aggregates is a select list over the table; ordered aggregates make
	// them depend on every row.
	aggregates string
}

var duckDBTables = []duckDBTable{
	{
		name: "receipts",
		columns: [][2]string{{"received_at", "TIMESTAMP WITH TIME ZONE"}, {"peer_id", "INTEGER"},
			{"msg_hash", "BIGINT"}, {"msg_type", "SMALLINT"}, {"size", "INTEGER"}},
		aggregates: `count(*), sum(size), epoch_us(min(received_at)), epoch_us(max(received_at)),
			count(DISTINCT msg_hash), sum(peer_id), sum(msg_type),
			md5(string_agg(concat_ws(',', epoch_us(received_at), peer_id, msg_hash, msg_type, size), ';'
				ORDER BY received_at, peer_id, msg_hash))`,
	},
	{
		name: "messages",
		columns: [][2]string{{"msg_hash", "BIGINT"}, {"msg_type", "SMALLINT"}, {"seen", "TIMESTAMP WITH TIME ZONE"},
			{"scid", "UBIGINT"}, {"direction", "SMALLINT"}, {"node_id", "BLOB"}, {"timestamp", "BIGINT"},
			{"size", "INTEGER"}, {"signed", "BLOB"}},
		aggregates: `count(*), sum(size), epoch_us(min(seen)), epoch_us(max(seen)), count(DISTINCT msg_hash),
			sum(msg_type), sum(scid), count(scid), sum(direction), sum(timestamp), count(node_id),
			md5(string_agg(hex(signed), ',' ORDER BY msg_hash)), md5(string_agg(hex(node_id), ',' ORDER BY msg_hash))`,
	},
	{
		name:       "peers",
		columns:    [][2]string{{"peer_id", "INTEGER"}, {"node_id", "BLOB"}, {"address", "VARCHAR"}},
		aggregates: `count(*), sum(peer_id), md5(string_agg(concat_ws(' ', peer_id, hex(node_id), address), ',' ORDER BY peer_id))`,
	},
}

// parquet returns the DuckDB expression that reads the table's Parquet file in dir.
func (tb duckDBTable) parquet(dir string) string {
	return "read_parquet(" + sqlString(filepath.Join(dir, tb.name+".parquet")) + ")"
}

// csv returns a DuckDB subquery that reads the table's CSV file in dir with
// the Parquet file's types.
func (tb duckDBTable) csv(dir string) string {
	var types, selects []string
	for _, c := range tb.columns {
		name, typ := c[0], c[1]
		sel := name
		if typ == "BLOB" {
			typ, sel = "VARCHAR", "unhex("+name+") AS "+name
		}
		types = append(types, sqlString(name)+": "+sqlString(typ))
		selects = append(selects, sel)
	}
	return fmt.Sprintf("(SELECT %s FROM read_csv(%s, header = true, columns = {%s}))",
		strings.Join(selects, ", "), sqlString(filepath.Join(dir, tb.name+".csv")), strings.Join(types, ", "))
}

// sqlSum returns what SQL's sum gives over vs: NULL for no values.
func sqlSum(vs []*big.Int) string {
	if len(vs) == 0 {
		return "NULL"
	}
	s := new(big.Int)
	for _, v := range vs {
		s.Add(s, v)
	}
	return s.String()
}

// sqlMD5Agg returns what md5(string_agg(part, sep)) gives over parts: NULL
// for none.
func sqlMD5Agg(parts []string, sep string) string {
	if len(parts) == 0 {
		return "NULL"
	}
	sum := md5.Sum([]byte(strings.Join(parts, sep)))
	return hex.EncodeToString(sum[:])
}

// sqlEpochUs returns epoch_us(min(ts)) and epoch_us(max(ts)): NULL for none.
func sqlEpochUs(ts []time.Time) (lo, hi string) {
	if len(ts) == 0 {
		return "NULL", "NULL"
	}
	return fmt.Sprint(slices.MinFunc(ts, time.Time.Compare).UnixMicro()), fmt.Sprint(slices.MaxFunc(ts, time.Time.Compare).UnixMicro())
}

// hexUpper is DuckDB's hex() of a BLOB.
func hexUpper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func bigInt(v int64) *big.Int { return big.NewInt(v) }

// receiptAggregates computes duckDBTables' receipts aggregates over rs.
func receiptAggregates(rs []receiptRow) []string {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b receiptRow) int {
		return cmp.Or(a.ReceivedAt.Compare(b.ReceivedAt), cmp.Compare(a.PeerID, b.PeerID), cmp.Compare(a.MsgHash, b.MsgHash))
	})
	var sizes, peers, types []*big.Int
	var times []time.Time
	var rows []string
	hashes := map[int64]bool{}
	for _, r := range rs {
		sizes, peers, types = append(sizes, bigInt(int64(r.Size))), append(peers, bigInt(int64(r.PeerID))), append(types, bigInt(int64(r.MsgType)))
		times = append(times, r.ReceivedAt)
		hashes[r.MsgHash] = true
		rows = append(rows, fmt.Sprintf("%d,%d,%d,%d,%d", r.ReceivedAt.UnixMicro(), r.PeerID, r.MsgHash, r.MsgType, r.Size))
	}
	lo, hi := sqlEpochUs(times)
	return []string{fmt.Sprint(len(rs)), sqlSum(sizes), lo, hi, fmt.Sprint(len(hashes)), sqlSum(peers), sqlSum(types), sqlMD5Agg(rows, ";")}
}

// messageAggregates computes duckDBTables' messages aggregates over ms.
func messageAggregates(ms []messageRow) []string {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b messageRow) int { return cmp.Compare(a.MsgHash, b.MsgHash) })
	var sizes, types, scids, directions, timestamps []*big.Int
	var times []time.Time
	var signed, nodeIDs []string
	hashes := map[int64]bool{}
	for _, m := range ms {
		sizes, types = append(sizes, bigInt(int64(m.Size))), append(types, bigInt(int64(m.MsgType)))
		times = append(times, m.Seen)
		hashes[m.MsgHash] = true
		if m.SCID != nil {
			scids = append(scids, new(big.Int).SetUint64(*m.SCID))
		}
		if m.Direction != nil {
			directions = append(directions, bigInt(int64(*m.Direction)))
		}
		if m.Timestamp != nil {
			timestamps = append(timestamps, bigInt(*m.Timestamp))
		}
		if m.NodeID != nil {
			nodeIDs = append(nodeIDs, hexUpper(m.NodeID))
		}
		signed = append(signed, hexUpper(m.Signed))
	}
	lo, hi := sqlEpochUs(times)
	return []string{fmt.Sprint(len(ms)), sqlSum(sizes), lo, hi, fmt.Sprint(len(hashes)), sqlSum(types),
		sqlSum(scids), fmt.Sprint(len(scids)), sqlSum(directions), sqlSum(timestamps), fmt.Sprint(len(nodeIDs)),
		sqlMD5Agg(signed, ","), sqlMD5Agg(nodeIDs, ",")}
}

// peerAggregates computes duckDBTables' peers aggregates over ps.
func peerAggregates(ps []peerRow) []string {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b peerRow) int { return cmp.Compare(a.PeerID, b.PeerID) })
	var ids []*big.Int
	var rows []string
	for _, p := range ps {
		ids = append(ids, bigInt(int64(p.PeerID)))
		rows = append(rows, fmt.Sprintf("%d %s %s", p.PeerID, hexUpper(p.NodeID), p.Address))
	}
	return []string{fmt.Sprint(len(ps)), sqlSum(ids), sqlMD5Agg(rows, ",")}
}

// duckDBWindow is one exported window and what the test stored in it.
type duckDBWindow struct {
	name     string
	dir      string // holds the CSV and the Parquet files of one export
	receipts []receiptRow
	messages []messageRow
	peers    []peerRow
	// joined are the rows of duckDBJoin: msg_type, scid, hex(peer node_id),
	// delay in microseconds.
	joined [][]string
}

// duckDBJoin is the researcher's query: when each peer delivered each
// message, relative to when lnsync first stored it.
const duckDBJoin = `SELECT m.msg_type, m.scid, hex(p.node_id), epoch_us(r.received_at) - epoch_us(m.seen)
	FROM read_parquet(%s) r JOIN read_parquet(%s) m USING (msg_hash) JOIN read_parquet(%s) p USING (peer_id)
	ORDER BY r.received_at, r.peer_id`

// checkWithDuckDB reads the exports of windows with DuckDB: the Parquet
// files must have the expected DuckDB types, and aggregates computed by
// DuckDB from the Parquet files, from the CSV files and by Go from what was
// stored must agree.
func checkWithDuckDB(t *testing.T, windows []duckDBWindow) {
	t.Helper()
	// Build every statement first: one Node process loads DuckDB once.
	type check struct {
		name string
		want [][]string
	}
	var (
		statements []string
		checks     []check
	)
	add := func(name, sql string, want [][]string) {
		statements, checks = append(statements, sql), append(checks, check{name, want})
	}
	for _, w := range windows {
		wantAggs := map[string][]string{
			"receipts": receiptAggregates(w.receipts),
			"messages": messageAggregates(w.messages),
			"peers":    peerAggregates(w.peers),
		}
		for _, tb := range duckDBTables {
			var wantTypes [][]string
			for _, c := range tb.columns {
				wantTypes = append(wantTypes, []string{c[0], c[1]})
			}
			name := w.name + "/" + tb.name
			add(name+".parquet: DESCRIBE", "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "+tb.parquet(w.dir)+")", wantTypes)
			add(name+".csv: DESCRIBE", "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "+tb.csv(w.dir)+")", wantTypes)
			add(name+".parquet: aggregates", "SELECT "+tb.aggregates+" FROM "+tb.parquet(w.dir), [][]string{wantAggs[tb.name]})
			add(name+".csv: aggregates", "SELECT "+tb.aggregates+" FROM "+tb.csv(w.dir), [][]string{wantAggs[tb.name]})
		}
		file := func(name string) string { return sqlString(filepath.Join(w.dir, name+".parquet")) }
		add(w.name+": receipts ⋈ messages ⋈ peers", fmt.Sprintf(duckDBJoin, file("receipts"), file("messages"), file("peers")), w.joined)
	}
	results := runDuckDB(t, statements...)
	for i, c := range checks {
		got := results[i].Rows
		if !slices.EqualFunc(got, c.want, slices.Equal) {
			t.Errorf("%s: DuckDB gives\n  %q\nwant\n  %q\n(%s)", c.name, got, c.want, statements[i])
		}
	}
}
