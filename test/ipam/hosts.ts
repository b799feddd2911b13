// Host announcements as data: what is read back, and what counts as current.
import t from 'tap';
import { current, HOST_STALE_MS, hostKey, readAnnouncement } from '../../ipam/hosts.js';

t.test('a stored announcement is read back, and what is not one is skipped', async (t) => {
  const a = { host: 'h', hostId: 'i', at: 5, members: [{ service: 's', ip: '10.0.0.1', port: 80, owner: 'o', container: 'c' }], targets: [{ targets: ['10.0.0.1:9'], labels: {} }] };
  t.same(readAnnouncement(JSON.stringify(a)), a);
  t.equal(readAnnouncement('{'), undefined);
  t.equal(readAnnouncement('{"host":"h"}'), undefined);
  t.same(readAnnouncement(JSON.stringify({ ...a, members: [{ service: 's' }, ...a.members], targets: [{ targets: [1] }] }))?.members, a.members, 'malformed members and targets are dropped');
  t.equal(hostKey({ host: 'h', hostId: 'i' }), 'h@i');
  t.equal(hostKey({ host: 'h' }), 'h');
});

t.test('current: announcements published within HOST_STALE_MS', async (t) => {
  const now = 10 * HOST_STALE_MS;
  const list = [
    { host: 'b', at: now - 1000, members: [], targets: [] },
    { host: 'a', at: now - HOST_STALE_MS, members: [], targets: [] },
    { host: 'gone', at: now - HOST_STALE_MS - 1, members: [], targets: [] },
  ];
  t.same(current(list, now).map((h) => h.host), ['a', 'b']);
});
