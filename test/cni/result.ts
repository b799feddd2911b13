// CNI result conversion: the internal (1.1.0) shape written out in each spec
// version, and a prevResult of any version read back. What a version does not
// define must not appear in its output: runtimes validate results against the
// version they asked for.
import t from 'tap';
import { formatResult, parsePrevResult, type CniResult } from '../../cni/result.js';
import { CNI_CODES, CniError } from '../../cni/errors.js';
import { SUPPORTED_VERSIONS } from '../../cni/version.js';

const full: CniResult = {
  interfaces: [
    { name: 'veth1', mac: '02:00:00:00:00:01' },
    { name: 'eth0', mac: '02:00:00:00:00:02', mtu: 9000, sandbox: '/var/run/netns/x', socketPath: '/run/vhost.sock', pciID: '0000:00:1f.6' },
  ],
  ips: [
    { address: '10.0.0.5/24', gateway: '10.0.0.1', interface: 1 },
    { address: 'fd00::5/64', gateway: 'fd00::1', interface: 1 },
    { address: '10.0.1.5/24' },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.0.0.1', mtu: 1400, advmss: 1360, priority: 5, table: 100, scope: 0 },
    { dst: '10.9.0.0/16' },
  ],
  dns: { nameservers: ['10.0.0.53'], domain: 'example', search: ['example'], options: ['ndots:2'] },
};

t.test('1.1.0 carries every field', async (t) => {
  t.strictSame(formatResult(full, '1.1.0'), { cniVersion: '1.1.0', ...full });
});

t.test('1.0.0 drops the 1.1-only interface and route fields, and has no ips[].version', async (t) => {
  t.strictSame(formatResult(full, '1.0.0'), {
    cniVersion: '1.0.0',
    interfaces: [
      { name: 'veth1', mac: '02:00:00:00:00:01' },
      { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/var/run/netns/x' },
    ],
    ips: full.ips,
    routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }, { dst: '10.9.0.0/16' }],
    dns: full.dns,
  });
});

t.test('0.x results carry ips[].version by family, first in each entry', async (t) => {
  for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
    const out = formatResult(full, v);
    t.strictSame(
      out.ips,
      [
        { version: '4', address: '10.0.0.5/24', gateway: '10.0.0.1', interface: 1 },
        { version: '6', address: 'fd00::5/64', gateway: 'fd00::1', interface: 1 },
        { version: '4', address: '10.0.1.5/24' },
      ],
      v,
    );
    t.same(Object.keys((out.ips as object[])[0]!), ['version', 'address', 'gateway', 'interface'], `${v}: key order`);
    t.strictSame((out.interfaces as object[])[1], { name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/var/run/netns/x' }, `${v}: no 1.1 interface fields`);
    t.strictSame(out.routes, [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }, { dst: '10.9.0.0/16' }], `${v}: no 1.1 route fields`);
  }
});

t.test('every version names itself, and leaves out what the result does not have', async (t) => {
  for (const v of SUPPORTED_VERSIONS) {
    t.strictSame(formatResult({}, v), { cniVersion: v }, `${v}: empty`);
    // an IPAM plugin's result: no interfaces key at all
    t.notOk('interfaces' in formatResult({ ips: [{ address: '10.0.0.5/24' }] }, v), `${v}: no interfaces`);
    // no routes: the key is left out, not written as []
    t.notOk('routes' in formatResult({ routes: [] }, v), `${v}: empty routes left out`);
    t.notOk('dns' in formatResult({ dns: {} }, v), `${v}: empty dns left out`);
    t.strictSame(formatResult({ interfaces: [] }, v), { cniVersion: v, interfaces: [] }, `${v}: an empty interface list stays`);
  }
});

t.test('an interface with a name alone, and a route with a dst alone, stay that small', async (t) => {
  for (const v of SUPPORTED_VERSIONS) {
    const out = formatResult({ interfaces: [{ name: 'eth0' }], ips: [{ address: 'fd00::5/64' }], routes: [{ dst: '::/0' }] }, v);
    t.strictSame(out.interfaces, [{ name: 'eth0' }], v);
    t.strictSame(out.routes, [{ dst: '::/0' }], v);
    t.strictSame(out.ips, [v.startsWith('0.') ? { version: '6', address: 'fd00::5/64' } : { address: 'fd00::5/64' }], v);
  }
});

t.test('formatResult does not change its input', async (t) => {
  const copy = structuredClone(full);
  for (const v of SUPPORTED_VERSIONS) formatResult(full, v);
  t.strictSame(full, copy);
});

t.test('prevResult: read into the internal shape', async (t) => {
  t.strictSame(parsePrevResult({}), {});
  t.strictSame(parsePrevResult({ cniVersion: '1.0.0' }), {}, 'cniVersion is not part of the shape');
  const prev = {
    cniVersion: '0.3.1',
    interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/x' }],
    ips: [
      { version: '4', address: '10.0.0.5/24', gateway: '10.0.0.1', interface: 0 },
      { version: '6', address: 'fd00::5/64' },
    ],
    routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
    dns: { nameservers: ['10.0.0.53'] },
  };
  t.strictSame(parsePrevResult(prev), {
    interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:02', sandbox: '/x' }],
    ips: [{ address: '10.0.0.5/24', gateway: '10.0.0.1', interface: 0 }, { address: 'fd00::5/64' }],
    routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
    dns: { nameservers: ['10.0.0.53'] },
  });
  // a gateway or interface of the wrong type is dropped, not carried on
  t.strictSame(parsePrevResult({ ips: [{ address: '10.0.0.5/24', gateway: 5, interface: '0' }] }), { ips: [{ address: '10.0.0.5/24' }] });
  t.strictSame(parsePrevResult({ interfaces: [], ips: [], routes: [] }), { interfaces: [], ips: [], routes: [] }, 'empty lists stay');
});

t.test('prevResult: the round trip through every version keeps what that version carries', async (t) => {
  for (const v of SUPPORTED_VERSIONS) {
    const written = formatResult(full, v);
    const back = parsePrevResult(JSON.parse(JSON.stringify(written)));
    t.strictSame(back.ips, full.ips, `${v}: ips`);
    t.strictSame(back.dns, full.dns, `${v}: dns`);
    t.equal(back.interfaces?.length, 2, `${v}: interfaces`);
  }
});

t.test('prevResult: a malformed one is INVALID_CONFIG naming the field', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [undefined, /^prevResult must be an object$/],
    [null, /^prevResult must be an object$/],
    ['x', /^prevResult must be an object$/],
    [5, /^prevResult must be an object$/],
    [[{ ips: [] }], /^prevResult must be an object$/],
    [{ interfaces: {} }, /^prevResult\.interfaces must be a list$/],
    [{ interfaces: [{ name: 'eth0' }, { mac: 'x' }] }, /^prevResult\.interfaces\[1\]\.name must be a string$/],
    [{ interfaces: [null] }, /^prevResult\.interfaces\[0\]\.name must be a string$/],
    [{ interfaces: [{ name: 7 }] }, /^prevResult\.interfaces\[0\]\.name must be a string$/],
    [{ ips: 'x' }, /^prevResult\.ips must be a list$/],
    [{ ips: [{ address: '10.0.0.5/24' }, { version: '4' }] }, /^prevResult\.ips\[1\]\.address must be a string$/],
    [{ ips: [0] }, /^prevResult\.ips\[0\]\.address must be a string$/],
    [{ routes: {} }, /^prevResult\.routes must be a list$/],
  ];
  for (const [raw, msg] of bad) {
    try {
      parsePrevResult(raw);
      t.fail(`accepted ${JSON.stringify(raw)}`);
    } catch (err) {
      t.ok(err instanceof CniError, `${JSON.stringify(raw)}: a CniError`);
      t.equal((err as CniError).code, CNI_CODES.INVALID_CONFIG, `${JSON.stringify(raw)}: INVALID_CONFIG`);
      t.match((err as Error).message, msg, JSON.stringify(raw));
    }
  }
});
