import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A network namespace joined to this one by a veth pair, for a cluster whose packets a test drops
 * with `tc`. Inside, the cluster binds `address`, and its processes reach each other over the
 * namespace's own `lo`, where the drops go; this test process reaches `address` over the veth
 * pair, so scraping /metrics keeps working whatever is dropped.
 */
export interface NetNamespace {
  readonly name: string;
  /** The namespace's end of the veth pair: the address the cluster binds and advertises. */
  readonly address: string;
  /** This side's end of the veth pair, where the cluster reaches this process. */
  readonly hostAddress: string;
  /** Runs a command inside the namespace (`LocalClusterOptions.commandPrefix`). */
  readonly commandPrefix: readonly string[];
  /** Drops every packet inside the namespace to these TCP ports until `heal`. */
  dropInbound(ports: readonly number[]): void;
  /** Delivers everything again. */
  heal(): void;
  /** Deletes the veth pair and the namespace; safe to call more than once. */
  remove(): void;
}

/** Why this machine cannot give a test a namespace (not root, no `ip` or `tc`), or null. */
export function netnsUnavailable(): string | null {
  const probe = `paxos-probe-${process.pid}`;
  try {
    execFileSync('tc', ['-V'], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
  } catch (err) {
    return `network namespaces need root, ip and tc: ${firstLine(err)}`;
  }
  run('ip', 'netns', 'del', probe);
  return null;
}

/** A fresh namespace with unique names and a /30 of its own; `remove` it when done. */
export function createNetNamespace(): NetNamespace {
  const id = randomBytes(3).toString('hex');
  const name = `paxos-e2e-${id}`;
  // veth names are limited to 15 characters.
  const hostVeth = `pxh${id}`;
  const innerVeth = `pxn${id}`;
  const [hostAddress, address] = freeSubnet();
  let removed = false;
  let shaping = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    // Deleting one end deletes the pair; both may be gone already if creation failed half-way.
    tryRun('ip', 'link', 'del', hostVeth);
    tryRun('ip', 'netns', 'del', name);
  };
  try {
    run('ip', 'netns', 'add', name);
    run('ip', '-n', name, 'link', 'set', 'lo', 'up');
    run('ip', 'link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', innerVeth, 'netns', name);
    run('ip', 'addr', 'add', `${hostAddress}/30`, 'dev', hostVeth);
    run('ip', 'link', 'set', hostVeth, 'up');
    run('ip', '-n', name, 'addr', 'add', `${address}/30`, 'dev', innerVeth);
    run('ip', '-n', name, 'link', 'set', innerVeth, 'up');
  } catch (err) {
    remove();
    throw err;
  }
  return {
    name,
    address,
    hostAddress,
    commandPrefix: ['ip', 'netns', 'exec', name],
    dropInbound(ports) {
      const tc = (words: string) => run('tc', '-n', name, ...words.split(' '));
      if (!shaping) {
        // netem and iptables are not available: an htb whose default class passes everything,
        // and a second class into a zero-length queue, which drops whatever a filter sends it.
        tc('qdisc add dev lo root handle 1: htb default 1');
        tc('class add dev lo parent 1: classid 1:1 htb rate 10gbit');
        tc('class add dev lo parent 1: classid 1:2 htb rate 10gbit');
        tc('qdisc add dev lo parent 1:2 handle 20: pfifo limit 0');
        shaping = true;
      }
      for (const port of ports)
        tc(`filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport ${port} 0xffff flowid 1:2`);
    },
    heal() {
      if (!shaping) return;
      shaping = false;
      run('tc', '-n', name, 'qdisc', 'del', 'dev', 'lo', 'root');
    },
    remove,
  };
}

/** A host and namespace address pair in a 10.230–239.x.y/30 that no interface here uses yet. */
function freeSubnet(): [string, string] {
  const used = execFileSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
  for (;;) {
    const [a = 0, b = 0, c = 0] = randomBytes(3);
    const prefix = `10.${230 + (a % 10)}.${b}`;
    const base = (c % 64) * 4;
    const pair: [string, string] = [`${prefix}.${base + 1}`, `${prefix}.${base + 2}`];
    if (!used.includes(`${prefix}.${base + 1}/`) && !used.includes(`${prefix}.${base + 2}/`)) return pair;
  }
}

function run(command: string, ...args: string[]): void {
  try {
    execFileSync(command, args, { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`${command} ${args.join(' ')}: ${firstLine(err)}`);
  }
}

function tryRun(command: string, ...args: string[]): void {
  try {
    execFileSync(command, args, { stdio: 'pipe' });
  } catch {
    // Already gone.
  }
}

function firstLine(err: unknown): string {
  const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
  return (stderr || (err as Error).message).split('\n')[0] ?? '';
}
