// query.mjs runs SQL statements with DuckDB (the @duckdb/node-api bindings,
// pinned in package.json) and prints their results as JSON, so that Go tests
// can check lnsync's exports with the reader researchers use.
//
// Usage: node query.mjs SQL [SQL...]
//
// The statements run in order on one in-memory database, so a statement may
// use what an earlier one created. Paths in them are relative to the working
// directory.
//
// Output (stdout, one JSON document):
//   {"duckdb_version": "v1.5.x",
//    "results": [{"columns": ["name", ...], "rows": [["value" | null, ...], ...]}, ...]}
//
// Every non-NULL value is printed as a string: integers of any width as
// decimal (BIGINT and wider arrive as BigInt and would lose precision as JSON
// numbers), other values in the bindings' text form, TIMESTAMP WITH TIME ZONE
// in UTC whatever the machine's zone (the session's TimeZone is UTC too, for
// DuckDB's own functions). SQL NULL is null. Cast in the SQL for any other
// rendering (epoch_us(ts), hex(blob)).
import { DuckDBInstance, DuckDBTimestampTZValue, version } from "@duckdb/node-api";

const statements = process.argv.slice(2);
if (statements.length === 0) {
  process.stderr.write("usage: node query.mjs SQL [SQL...]\n");
  process.exit(2);
}

function text(v) {
  return v === null || v === undefined ? null : String(v);
}

// The bindings print TIMESTAMP WITH TIME ZONE in the process's zone by default.
DuckDBTimestampTZValue.timezoneOffsetInMinutes = 0;
const instance = await DuckDBInstance.create(":memory:");
const conn = await instance.connect();
await conn.run("SET TimeZone = 'UTC'");
const results = [];
for (const sql of statements) {
  let reader;
  try {
    reader = await conn.runAndReadAll(sql);
  } catch (err) {
    process.stderr.write(`${err.message}\nin: ${sql}\n`);
    process.exit(1);
  }
  results.push({
    columns: reader.columnNames(),
    rows: reader.getRows().map((row) => row.map(text)),
  });
}
conn.closeSync();
instance.closeSync();
process.stdout.write(JSON.stringify({ duckdb_version: version(), results }) + "\n");
