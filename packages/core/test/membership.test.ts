import { describe, expect, it } from 'vitest';
import { type KindSnapshot, MemberView, withoutIncarnations } from '../src/index.ts';

const snapshot = (
  observed: string[] | null,
  leases: Record<string, number> = {},
  removed: string[] | null = null,
): KindSnapshot => ({ observed, removed, leases: new Map(Object.entries(leases)) });

describe('MemberView', () => {
  it('reports the first poll whole, then joins and graceful leaves as they happen', () => {
    const view = new MemberView({ leaseTimeoutMs: 1000 });
    expect(view.update(0, 'Batchers', snapshot(['b@1']), true)).toEqual({
      kind: 'Batchers',
      members: ['b@1'],
      joined: ['b@1'],
      left: [],
      expired: [],
    });
    expect(view.update(100, 'Batchers', snapshot(['b@1'], { 'b@1': 100 }), true)).toBeNull();
    expect(view.update(200, 'Batchers', snapshot(['b@1', 'c@1'], { 'b@1': 200 }), true)?.joined).toEqual([
      'c@1',
    ]);
    // A member in `removed` leaves at once, and never comes back even if the directory forgets it.
    const left = view.update(300, 'Batchers', snapshot(['b@1', 'c@1'], {}, ['b@1']), true);
    expect(left?.left).toEqual(['b@1']);
    expect(left?.expired).toEqual([]);
    expect(view.update(400, 'Batchers', snapshot(['b@1', 'c@1'], { 'b@1': 400 }), true)).toBeNull();
    expect(view.live('Batchers')).toEqual(['c@1']);
  });

  it('drops a member whose lease stops rising (a paused or killed process) and takes it back when it rises again', () => {
    const view = new MemberView({ leaseTimeoutMs: 1000, minStalePolls: 3 });
    view.update(0, 'P', snapshot(['a@1', 'b@1'], { 'a@1': 0, 'b@1': 0 }), true);
    let change = null;
    for (let t = 300; t <= 900; t += 300) {
      change = view.update(t, 'P', snapshot(['a@1', 'b@1'], { 'a@1': t, 'b@1': 0 }), true);
      expect(change).toBeNull();
    }
    change = view.update(1200, 'P', snapshot(['a@1', 'b@1'], { 'a@1': 1200, 'b@1': 0 }), true);
    expect(change?.left).toEqual(['b@1']);
    expect(change?.expired).toEqual(['b@1']);
    // SIGCONT: its lease rises again.
    change = view.update(1500, 'P', snapshot(['a@1', 'b@1'], { 'a@1': 1500, 'b@1': 1450 }), true);
    expect(change?.joined).toEqual(['b@1']);
  });

  it('needs both the time and enough polls: a slow observer does not expire members between two polls', () => {
    const view = new MemberView({ leaseTimeoutMs: 1000, minStalePolls: 3 });
    view.update(0, 'P', snapshot(['a@1'], { 'a@1': 0 }), true);
    expect(view.update(5000, 'P', snapshot(['a@1'], { 'a@1': 0 }), true)).toBeNull();
    expect(view.update(5001, 'P', snapshot(['a@1'], { 'a@1': 0 }), true)).toBeNull();
    expect(view.update(5002, 'P', snapshot(['a@1'], { 'a@1': 0 }), true)?.left).toEqual(['a@1']);
  });

  it('keeps its view through a directory restart: an empty poll is not everyone leaving', () => {
    const view = new MemberView({ leaseTimeoutMs: 1000 });
    view.update(0, 'P', snapshot(['a@1', 'b@1'], { 'a@1': 0, 'b@1': 0 }), true);
    // The directory came back empty and our own lease is not there yet: polls are not vouched for.
    for (let t = 500; t <= 5000; t += 500) expect(view.update(t, 'P', snapshot(null), false)).toBeNull();
    // Everyone re-registers; nobody ever left.
    expect(view.update(5500, 'P', snapshot(['a@1', 'b@1'], { 'a@1': 5500, 'b@1': 5490 }), true)).toBeNull();
    expect(view.live('P')).toEqual(['a@1', 'b@1']);
  });

  it('expires, after a directory restart, a member that died meanwhile and never re-registered', () => {
    const view = new MemberView({ leaseTimeoutMs: 1000, minStalePolls: 3 });
    view.update(0, 'P', snapshot(['a@1', 'b@1'], { 'a@1': 0, 'b@1': 0 }), true);
    let change = null;
    for (let t = 500; t <= 2500 && change === null; t += 500) {
      change = view.update(t, 'P', snapshot(['a@1'], { 'a@1': t }), true);
    }
    expect(change?.left).toEqual(['b@1']);
  });

  it('does not take a dead incarnation for live when it first sees it, and reads the leases of every entry it knows', () => {
    const view = new MemberView({ leaseTimeoutMs: 1000 });
    const first = view.update(
      10_000,
      'P',
      snapshot(['old@1', 'new@2'], { 'old@1': 2000, 'new@2': 9990 }),
      true,
    );
    expect(first?.members).toEqual(['new@2']);
    expect(view.entriesToRead('P', ['new@2']).sort()).toEqual(['new@2', 'old@1']);
    expect(() => new MemberView({ leaseTimeoutMs: 0 })).toThrow(/leaseTimeoutMs/);
  });

  it('strips incarnation tags from entries', () => {
    expect(withoutIncarnations(['tcp://h:1@ab', 'tcp://h:1@cd', 'tcp://h:2@ab', 'x'])).toEqual([
      'tcp://h:1',
      'tcp://h:2',
      'x',
    ]);
  });
});
