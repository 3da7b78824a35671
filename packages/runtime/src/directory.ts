import type { MemberKind, Membership } from '@paxos/anna-client';
import type { Configuration } from '@paxos/core';
import type { Logger } from 'pino';
import { parseAddress } from './address.ts';
import { type Node, withoutIncarnations } from './node.ts';

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

/**
 * Reads the acceptor groups from the directory and returns a configuration once `groups` groups
 * each list all 2f+1 acceptors (ids 0..2f). Groups are ordered by id, so every proposer builds
 * the same slot → group mapping.
 */
export async function waitForConfiguration(
  membership: Membership,
  options: { groups: number; f: number; pollMs: number; logger: Logger; signal?: AbortSignal },
): Promise<Configuration> {
  const size = 2 * options.f + 1;
  let lastReport = '';
  for (;;) {
    if (options.signal?.aborted) throw new Error('stopped while waiting for acceptor groups');
    const ids = (await liveMembers(membership, 'AcceptorGroups').catch(() => []))
      .map(Number)
      .filter((id) => Number.isInteger(id) && id >= 0)
      .sort((a, b) => a - b);
    const groups = [];
    for (const groupId of ids.slice(0, options.groups)) {
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
    const complete = groups.length >= options.groups && groups.every((g) => g.acceptors.length === size);
    if (complete) return { f: options.f, groups };
    const report = `have ${groups.length}/${options.groups} groups: ${groups.map((g) => `${g.groupId}:${g.acceptors.length}/${size}`).join(' ')}`;
    if (report !== lastReport) options.logger.info({ status: report }, 'waiting for acceptor groups');
    lastReport = report;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
}
