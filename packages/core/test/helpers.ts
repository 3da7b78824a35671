import type { Address, Effect, Message, Role } from '../src/index.ts';

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
