import type { Address, Ballot, Effect, Message, Phase1b, Role } from '../src/index.ts';

export const deliver = (role: Role, from: Address, message: Message, now = 0): Effect[] =>
  role.step(now, { type: 'message', from, message });

export const fire = (role: Role, name: string, now = 0): Effect[] => role.step(now, { type: 'timer', name });

export function sends(effects: Effect[]): { to: Address; message: Message }[] {
  return effects.flatMap((e) => (e.kind === 'send' ? [{ to: e.to, message: e.message }] : []));
}

export function sendsOf<T extends Message['type']>(
  effects: Effect[],
  type: T,
): { to: Address; message: Extract<Message, { type: T }> }[] {
  return sends(effects).filter(
    (s): s is { to: Address; message: Extract<Message, { type: T }> } => s.message.type === type,
  );
}

export function timers(effects: Effect[]): string[] {
  return effects.flatMap((e) => (e.kind === 'setTimer' ? [e.name] : []));
}

/**
 * An acceptor's Phase1b promising `ballot` from slot 0, reporting `accepted` (one page; `page`
 * overrides any field, e.g. the watermark or a next page).
 */
export function promise(
  ballot: Ballot,
  groupId: number,
  acceptorId: number,
  accepted: Phase1b['accepted'] = [],
  page: Partial<Phase1b> = {},
): Phase1b {
  return {
    type: 'Phase1b',
    ballot,
    groupId,
    acceptorId,
    watermark: 0,
    accepted,
    fromSlot: 0,
    nextSlot: 0,
    more: false,
    acceptedEnd: accepted.reduce((m, e) => Math.max(m, e.slot + 1), 0),
    ...page,
  };
}
