// A rate-limited link between the bench's two peers (`--link RATE`): peer B runs in a network
// namespace of its own, joined to the host's by a veth pair; a token bucket (tc tbf) on each
// end caps each direction at RATE. Peer A stays in the host's namespace and listens on the
// host end's address; B reaches it only through the link. Without `--link` both peers are on
// 127.0.0.1 (loopback: no bandwidth limit, the machine's CPU is the bound).
//
// Why: on loopback a fresh peer's sync costs per file, not per byte, and the critical class
// (themes, plugins) is 60% of the files. Between two servers the bytes cost too: the link
// shows how a tool spends a real link (what it fetches first, and whether a node is ready
// long before its uploads are complete). Needs root, `ip` and `tc` (iproute2) and the tbf
// queueing discipline. No added latency: netem is not available on this machine.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { which } from './util.mjs';

/** Where the two peers are: loopback unless setUpLink() ran. */
export const place = {
  /** the address peer A listens on (B dials it) */
  hostA: '127.0.0.1',
  /** the address peer B listens on (reachable from the host's namespace too) */
  hostB: '127.0.0.1',
  /** the link's rate in bits/s, null on loopback */
  rateBits: null,
  /** `[cmd, args]` to run a command as peer B (inside B's namespace) */
  asB: (cmd, args) => [cmd, args],
};

const UNITS = { kbit: 1e3, mbit: 1e6, gbit: 1e9 };

/** "100mbit" → 1e8 bits/s; a clear error for anything else. */
export function parseRate(text) {
  const m = /^(\d+(?:\.\d+)?)(kbit|mbit|gbit)$/i.exec(String(text).trim());
  if (!m) throw new Error(`--link: "${text}" is not a rate (write it like 100mbit or 1gbit)`);
  const bits = Number(m[1]) * UNITS[m[2].toLowerCase()];
  if (!(bits >= 1e6 && bits <= 100e9)) throw new Error(`--link: ${text} is out of range (1mbit to 100gbit)`);
  return bits;
}

/** What is missing to build a link here (null: nothing). */
export function linkProblem() {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and tc)';
  const missing = ['ip', 'tc'].filter((c) => !which(c) && !fs.existsSync(`/usr/sbin/${c}`) && !fs.existsSync(`/sbin/${c}`));
  return missing.length ? `missing: ${missing.join(', ')} (apt-get install -y iproute2)` : null;
}

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr || e.message || '').toString().trim()}`);
  }
}

/**
 * Builds the link for this bench process and points `place` at it; returns close(). The names
 * and the subnet come from the process id, so two bench processes do not collide (and none
 * collides with the fault suite's 10.77.0.0/24).
 */
export function setUpLink(rateBits) {
  const problem = linkProblem();
  if (problem) throw new Error(`--link: ${problem}`);
  const id = process.pid % 100000;
  const ns = `sabench-${id}`;
  const hostEnd = `sbh${id}`;
  const nsEnd = `sbn${id}`;
  const subnet = `10.231.${(process.pid % 250) + 1}`;
  const hostA = `${subnet}.1`;
  const hostB = `${subnet}.2`;
  // tbf needs a bucket of at least one packet as the veth hands it over (GSO: up to 64 KiB)
  // and at least a timer tick's worth of bytes at the rate
  const burst = Math.max(256 * 1024, Math.ceil(rateBits / 8 / 100));
  const limit = Math.max(2 * burst, Math.ceil((rateBits / 8) * 0.05));
  const close = () => {
    try { run('ip', ['link', 'del', hostEnd]); } catch {}
    try { run('ip', ['netns', 'del', ns]); } catch {}
  };
  close();
  try {
    run('ip', ['netns', 'add', ns]);
    run('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', nsEnd, 'netns', ns]);
    run('ip', ['addr', 'add', `${hostA}/24`, 'dev', hostEnd]);
    run('ip', ['link', 'set', hostEnd, 'up']);
    run('ip', ['-n', ns, 'addr', 'add', `${hostB}/24`, 'dev', nsEnd]);
    run('ip', ['-n', ns, 'link', 'set', nsEnd, 'up']);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const tbf = ['root', 'tbf', 'rate', String(rateBits), 'burst', String(burst), 'limit', String(limit)];
    run('tc', ['qdisc', 'add', 'dev', hostEnd, ...tbf]);
    run('tc', ['-n', ns, 'qdisc', 'add', 'dev', nsEnd, ...tbf]);
  } catch (e) {
    close();
    throw e;
  }
  Object.assign(place, { hostA, hostB, rateBits, asB: (cmd, args) => ['ip', ['netns', 'exec', ns, cmd, ...args]] });
  return close;
}

/** "100 Mbit/s" for tables */
export function rateLabel(bits) {
  return bits >= 1e9 ? `${+(bits / 1e9).toFixed(2)} Gbit/s` : `${+(bits / 1e6).toFixed(1)} Mbit/s`;
}
