import type { MemberKind, Membership } from '@paxos/anna-client';
import { type Configuration, configurationId, describeConfiguration, withoutIncarnations } from '@paxos/core';
import type { Logger } from 'pino';
import { parseAddress } from './address.ts';
import { ConfigError } from './config.ts';
import type { Node } from './node.ts';

/** An acceptor's entry in its group's member key: `<acceptorId>=<address>`. */
export function acceptorMember(acceptorId: number, address: string): string {
  return `${acceptorId}=${address}`;
}

export function parseAcceptorMember(member: string): { acceptorId: number; address: string } | null {
  const eq = member.indexOf('=');
  const acceptorId = Number(member.slice(0, eq));
  const address = member.slice(eq + 1);
  if (eq < 1 || !Number.isInteger(acceptorId) || acceptorId < 0) return null;
  try {
    parseAddress(address);
  } catch {
    return null;
  }
  return { acceptorId, address };
}

/** Registers an acceptor in its group: the group id under AcceptorGroups, `<id>=<address>` under the group. */
export async function registerAcceptor(node: Node, groupId: number, acceptorId: number): Promise<void> {
  await node.register('AcceptorGroups', String(groupId));
  await node.register(`${groupId}`, acceptorMember(acceptorId, node.address));
}

/** The live members of `kind`, without their incarnation tags. */
export async function liveMembers(membership: Membership, kind: MemberKind): Promise<string[]> {
  return withoutIncarnations(await membership.live(kind));
}

/** The live acceptors of group `groupId` (entries that do not parse are skipped). */
export async function liveAcceptors(
  membership: Membership,
  groupId: number,
): Promise<{ acceptorId: number; address: string }[]> {
  return (await liveMembers(membership, `${groupId}`)).flatMap((m) => parseAcceptorMember(m) ?? []);
}

/** The shape that decides safety: f and the group ids in slot order (groups 0..G-1). */
export interface ConfigurationShape {
  readonly f: number;
  readonly groups: readonly number[];
}

/** A proposer's shape from its settings: F and ACCEPTOR_GROUPS = G, the groups 0..G-1. */
export function shapeOf(f: number, groupCount: number): ConfigurationShape {
  return { f, groups: Array.from({ length: groupCount }, (_, g) => g) };
}

/** The shape as a configuration without acceptors: what core's id and description read. */
function asConfiguration(shape: ConfigurationShape): Configuration {
  return { f: shape.f, groups: shape.groups.map((groupId) => ({ groupId, acceptors: [] })) };
}

/** The directory name under which the cluster records the configuration it formed with. */
export const CONFIGURATION_NAME = 'configuration';

/** The configuration the directory records, or null (none yet, or the directory restarted). */
export async function recordedConfiguration(membership: Membership): Promise<ConfigurationShape | null> {
  const bytes = await membership.getValue(CONFIGURATION_NAME);
  if (bytes === null) return null;
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as ConfigurationShape;
    if (Number.isInteger(parsed.f) && Array.isArray(parsed.groups)) return parsed;
  } catch {
    // not ours: reported below as a mismatch
  }
  return { f: -1, groups: [] };
}

/** Throws a ConfigError (one line) when `mine` is not the configuration the cluster formed with. */
export function assertSameConfiguration(mine: ConfigurationShape, recorded: ConfigurationShape | null): void {
  if (recorded === null) return;
  const ours = asConfiguration(mine);
  const theirs = asConfiguration(recorded);
  if (configurationId(ours) === configurationId(theirs)) return;
  throw new ConfigError(
    `this proposer's configuration (${describeConfiguration(ours)}) is not the one the cluster formed with (${describeConfiguration(theirs)}): start it with F=${recorded.f} ACCEPTOR_GROUPS=${recorded.groups.length}, or start a new cluster with another ANNA_KEY_PREFIX`,
  );
}

/**
 * Records the configuration in the directory when the cluster forms (and again after a directory
 * restart: the agent writes it every poll), then checks that the recorded one is ours: of two
 * proposers that formed it at once with different settings, one refuses to go on.
 */
export async function pinConfiguration(node: Node, config: Configuration): Promise<void> {
  const mine: ConfigurationShape = { f: config.f, groups: config.groups.map((g) => g.groupId) };
  const recorded = await recordedConfiguration(node.membership);
  assertSameConfiguration(mine, recorded);
  await node.directoryAgent.publish(CONFIGURATION_NAME, new TextEncoder().encode(JSON.stringify(mine)));
  assertSameConfiguration(mine, await recordedConfiguration(node.membership));
}

/**
 * Reads the acceptor groups from the directory and returns a configuration once every group of
 * `shape` lists all 2f+1 acceptors (ids 0..2f). The groups keep the shape's order, so every
 * proposer builds the same slot → group mapping whoever else registered.
 */
export async function waitForConfiguration(
  membership: Membership,
  options: { shape: ConfigurationShape; pollMs: number; logger: Logger; signal?: AbortSignal },
): Promise<Configuration> {
  const { f } = options.shape;
  const size = 2 * f + 1;
  let lastReport = '';
  for (;;) {
    if (options.signal?.aborted) throw new Error('stopped while waiting for acceptor groups');
    const groups = [];
    for (const groupId of options.shape.groups) {
      const members = await liveAcceptors(membership, groupId).catch(() => []);
      const acceptors: string[] = [];
      for (let id = 0; id < size; id++) {
        const found = members.filter((m) => m.acceptorId === id);
        // With two live entries for one id, the later registration (listed last) wins.
        const chosen = found[found.length - 1];
        if (chosen !== undefined) acceptors.push(chosen.address);
      }
      groups.push({ groupId, acceptors });
    }
    if (groups.every((g) => g.acceptors.length === size)) return { f, groups };
    const report = `have ${groups.map((g) => `${g.groupId}:${g.acceptors.length}/${size}`).join(' ')}`;
    if (report !== lastReport) options.logger.info({ status: report }, 'waiting for acceptor groups');
    lastReport = report;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
}
