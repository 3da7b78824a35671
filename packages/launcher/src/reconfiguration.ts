/**
 * What an operator asks of a cluster's acceptor groups (issue 16), as the change core's
 * `planConfigChange` makes: shared by the local cluster (`pnpm cluster reconfigure` / `replace`)
 * and EC2 (`pnpm aws scale acceptor-groups` / `replace`), which differ only in how they learn
 * which acceptors ever existed.
 */
import type { ConfigChange, ConfigSpec } from '@paxos/core';
import { acceptorName, parseAcceptorName } from './topology.ts';

/** What an operator asks for: a number of acceptor groups, or one acceptor replaced (by name). */
export type ReconfigureRequest = { readonly groups: number } | { readonly replace: string };

/**
 * The change a request asks of `current`, with ids never used before in this cluster: new group
 * ids above every group that ever had an acceptor (`everStarted`, process names) or is in
 * `current`, a replacement's id above every acceptor its group ever had. Throws a one-line error
 * for a request that cannot be made.
 */
export function changeFor(
  request: ReconfigureRequest,
  current: ConfigSpec,
  everStarted: readonly string[],
): ConfigChange {
  const ever = everStarted.flatMap((name) => parseAcceptorName(name) ?? []);
  if ('groups' in request) {
    const nextGroupId = Math.max(
      0,
      ...ever.map((a) => a.groupId + 1),
      ...current.groups.map((g) => g.groupId + 1),
    );
    return { kind: 'groups', groups: request.groups, nextGroupId };
  }
  const identity = parseAcceptorName(request.replace);
  if (identity === null)
    throw new Error(`cannot replace ${request.replace}: expected an acceptor name such as acceptor-g1-a2`);
  const ids = ever.filter((a) => a.groupId === identity.groupId).map((a) => a.acceptorId);
  const newAcceptorId =
    Math.max(-1, ...ids, ...(current.groups.find((g) => g.groupId === identity.groupId)?.acceptorIds ?? [])) +
    1;
  return { kind: 'replace', groupId: identity.groupId, acceptorId: identity.acceptorId, newAcceptorId };
}

/** One line: `version 3: groups 0[0,1,3] 1[0,1,2]`. */
export function describeSpec(spec: ConfigSpec): string {
  return `version ${spec.version}: groups ${spec.groups.map((g) => `${g.groupId}[${g.acceptorIds.join(',')}]`).join(' ')}`;
}

/** The acceptors of `spec` as process names (`acceptorName`). */
export function acceptorNamesOf(spec: ConfigSpec): string[] {
  return spec.groups.flatMap((g) => g.acceptorIds.map((a) => acceptorName(g.groupId, a)));
}

/** The acceptors of `current` that `target` drops (they retire once the leader serves it), as process names. */
export function droppedAcceptors(current: ConfigSpec, target: ConfigSpec): string[] {
  const kept = new Set(acceptorNamesOf(target));
  return acceptorNamesOf(current).filter((name) => !kept.has(name));
}
