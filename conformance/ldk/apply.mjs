// apply.mjs applies Rapid Gossip Sync files to a fresh LDK NetworkGraph using LDK's
// own client (the lightningdevkit WASM bindings) and prints the resulting graph as
// canonical JSON on stdout.
//
// Input (stdin, JSON): independent runs, each on its own fresh graph:
//   {"runs": [{"network": "mainnet"|"testnet"|"regtest"|"signet",
//              "now": "<unix seconds as decimal string, 0 = no current time>",
//              "nows": ["<unix seconds>", ...]   (optional: one per file, overrides now),
//              "prune_at": "<unix seconds>"      (optional: prune stale channels at this
//                                                 time after the files, as LDK's background
//                                                 processor does between syncs),
//              "files": ["<base64>", ...]}, ...]}
//
// Output (stdout, one JSON document; keys and arrays in a fixed order):
//   {"ldk_version": "...", "graphs": [{
//     "results": [{"ok": true, "timestamp": N} | {"ok": false, "error": "..."}],
//     "last_rgs_timestamp": N|null,
//     "channels": [...sorted by scid], "nodes": [...sorted by node id],
//     "logs": [{"level": "...", "msg": "..."}]}, ...]}  (every level, first 5000 records)
//
// u64 values are printed as decimal strings so that no precision is lost.
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as ldk from "lightningdevkit";

const here = path.dirname(fileURLToPath(import.meta.url));
const wasmPath = path.join(here, "node_modules", "lightningdevkit", "liblightningjs.wasm");

const networks = {
  mainnet: ldk.Network.LDKNetwork_Bitcoin,
  bitcoin: ldk.Network.LDKNetwork_Bitcoin,
  testnet: ldk.Network.LDKNetwork_Testnet,
  regtest: ldk.Network.LDKNetwork_Regtest,
  signet: ldk.Network.LDKNetwork_Signet,
};

const levelNames = ["gossip", "trace", "debug", "info", "warn", "error"];
const maxLogs = 5000;

// u64 returns v as an unsigned decimal string: the bindings hand some u64 values
// back as signed 64-bit BigInts.
function u64(v) {
  return BigInt.asUintN(64, BigInt(v)).toString();
}

function cmpBig(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function hex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

// featuresHex returns the big-endian feature bits as written on the wire, without
// the u16 length prefix that LDK's serialisation adds.
function featuresHex(features) {
  return hex(features.write().subarray(2));
}

function directionJSON(info) {
  // A missing direction comes back as a wrapper around a null pointer.
  if (info === null || info === undefined || BigInt(info.ptr) === 0n) {
    return null;
  }
  const fees = info.get_fees();
  return {
    enabled: Boolean(info.get_enabled()),
    cltv_expiry_delta: info.get_cltv_expiry_delta() & 0xffff,
    htlc_minimum_msat: u64(info.get_htlc_minimum_msat()),
    htlc_maximum_msat: u64(info.get_htlc_maximum_msat()),
    fee_base_msat: fees.get_base_msat() >>> 0,
    fee_proportional_millionths: fees.get_proportional_millionths() >>> 0,
    last_update: info.get_last_update() >>> 0,
  };
}

function addressJSON(addr) {
  const out = { type: "", descriptor: hex(addr.write()) };
  if (addr instanceof ldk.SocketAddress_TcpIpV4) {
    out.type = "ipv4";
  } else if (addr instanceof ldk.SocketAddress_TcpIpV6) {
    out.type = "ipv6";
  } else if (addr instanceof ldk.SocketAddress_OnionV2) {
    out.type = "torv2";
  } else if (addr instanceof ldk.SocketAddress_OnionV3) {
    out.type = "torv3";
  } else if (addr instanceof ldk.SocketAddress_Hostname) {
    out.type = "dns";
  } else {
    out.type = "unknown";
  }
  return out;
}

let ldkVersion = "";

async function main() {
  // The bindings announce themselves with console.log; keep stdout for the JSON result.
  console.log = (...args) => {
    const line = args.join(" ");
    if (line.startsWith("Loaded LDK")) {
      ldkVersion = line;
    }
    process.stderr.write(line + "\n");
  };
  const input = JSON.parse(fs.readFileSync(0, "utf8"));
  await ldk.initializeWasmFromBinary(fs.readFileSync(wasmPath));
  const graphs = [];
  for (const run of input.runs || []) {
    graphs.push(applyRun(run));
  }
  process.stdout.write(JSON.stringify({ ldk_version: ldkVersion, graphs }) + "\n");
}

function applyRun(run) {
  const network = networks[(run.network || "mainnet").toLowerCase()];
  if (network === undefined) {
    throw new Error(`unknown network ${run.network}`);
  }
  const now = BigInt(run.now || "0");

  const logs = [];
  const logger = ldk.Logger.new_impl({
    log(record) {
      const level = record.get_level();
      if (logs.length >= maxLogs) {
        return;
      }
      logs.push({ level: levelNames[level] ?? String(level), msg: record.get_args() });
    },
  });
  const graph = ldk.NetworkGraph.constructor_new(network, logger);
  const rgs = ldk.RapidGossipSync.constructor_new(graph, logger);

  const results = [];
  const nows = run.nows || [];
  for (const [i, b64] of (run.files || []).entries()) {
    const bytes = new Uint8Array(Buffer.from(b64, "base64"));
    const fileNow = i < nows.length ? BigInt(nows[i]) : now;
    const time = fileNow === 0n ? ldk.Option_u64Z.constructor_none() : ldk.Option_u64Z.constructor_some(fileNow);
    const res = rgs.update_network_graph_no_std(bytes, time);
    if (res instanceof ldk.Result_u32GraphSyncErrorZ_OK) {
      results.push({ ok: true, timestamp: res.res >>> 0 });
    } else {
      const err = res.err;
      let msg;
      if (err instanceof ldk.GraphSyncError_DecodeError) {
        msg = "DecodeError::" + err.decode_error.constructor.name.replace(/^DecodeError_/, "");
      } else if (err instanceof ldk.GraphSyncError_LightningError) {
        msg = "LightningError: " + err.lightning_error.get_err();
      } else {
        msg = "unknown error";
      }
      results.push({ ok: false, error: msg });
    }
  }

  if (run.prune_at) {
    graph.remove_stale_channels_and_tracking_with_time(BigInt(run.prune_at));
  }

  const lastOpt = graph.get_last_rapid_gossip_sync_timestamp();
  const last = lastOpt instanceof ldk.Option_u32Z_Some ? lastOpt.some >>> 0 : null;

  const ro = graph.read_only();
  const channels = [];
  const scids = ro.list_channels().map((s) => BigInt.asUintN(64, s)).sort(cmpBig);
  for (const scid of scids) {
    const ch = ro.channel(scid);
    const cap = ch.get_capacity_sats();
    channels.push({
      scid: u64(scid),
      node_one: hex(ch.get_node_one().as_slice()),
      node_two: hex(ch.get_node_two().as_slice()),
      features: featuresHex(ch.get_features()),
      capacity_sats: cap instanceof ldk.Option_u64Z_Some ? u64(cap.some) : null,
      one_to_two: directionJSON(ch.get_one_to_two()),
      two_to_one: directionJSON(ch.get_two_to_one()),
    });
  }
  const nodes = [];
  for (const id of ro.list_nodes()) {
    const info = ro.node(id);
    const node = {
      node_id: hex(id.as_slice()),
      channels: info.get_channels().map((s) => BigInt.asUintN(64, s)).sort(cmpBig).map((s) => s.toString()),
      announcement: null,
    };
    const ann = info.get_announcement_info();
    if (ann instanceof ldk.Option_NodeAnnouncementInfoZ_Some) {
      const a = ann.some;
      node.announcement = {
        features: featuresHex(a.features()),
        last_update: a.last_update() >>> 0,
        addresses: a.addresses().map(addressJSON),
      };
    }
    nodes.push(node);
  }
  nodes.sort((a, b) => (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0));
  ro.free();
  return { results, last_rgs_timestamp: last, channels, nodes, logs };
}

main().catch((err) => {
  process.stderr.write(`apply.mjs: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
