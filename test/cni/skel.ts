// The plugin runtime in-process: env and stdin validation, version
// negotiation, result conversion and error output. The plugin here is a stub
// that records its calls; the real plugins are tested as processes.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { runPlugin, versionAnswer, type Plugin, type PluginSpec } from '../../cni/skel.js';
import { formatResult, parsePrevResult } from '../../cni/result.js';
import { SUPPORTED_VERSIONS } from '../../cni/version.js';
import { BERTH_CODES, CNI_CODES } from '../../cni/errors.js';

interface Call {
  command: string;
  containerId: string;
  netns: string;
  ifname: string;
  prev: unknown;
}

function harness(result = { ips: [{ address: '10.0.0.5/24', gateway: '10.0.0.1' }] }) {
  const calls: Call[] = [];
  let loaded = 0;
  const record = (command: string) => async (req: any) => {
    calls.push({ command, containerId: req.containerId, netns: req.netns, ifname: req.ifname, prev: req.prevResult });
  };
  const plugin: Plugin<unknown> = {
    add: async (req) => {
      await record('ADD')(req);
      return result;
    },
    del: record('DEL'),
    check: record('CHECK'),
    gc: record('GC'),
    status: record('STATUS'),
  };
  const spec: PluginSpec<unknown> = {
    name: 'stub',
    knownArgs: new Set(['IP']),
    logConfig: () => ({}),
    parse: () => ({}),
    load: async () => {
      loaded++;
      return plugin;
    },
  };
  const run = async (env: Record<string, string>, stdin: unknown) => {
    let out = '';
    const code = await runPlugin(spec, {
      env,
      readStdin: async () => (typeof stdin === 'string' ? stdin : JSON.stringify(stdin)),
      stdout: { write: (s: string) => (out += s) },
    });
    return { code, out, json: out ? JSON.parse(out) : undefined };
  };
  return { run, calls, loaded: () => loaded };
}

const conf = (v = '1.0.0', extra = {}) => ({ cniVersion: v, name: 'net1', type: 'stub', ...extra });
const env = (command: string, extra: Record<string, string> = {}) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'c1',
  CNI_NETNS: '/var/run/netns/x',
  CNI_IFNAME: 'eth0',
  ...extra,
});

t.test('VERSION lists every supported version and loads nothing', async (t) => {
  const h = harness();
  const r = await h.run({ CNI_COMMAND: 'VERSION' }, '');
  t.equal(r.code, 0);
  t.same(r.json.supportedVersions, ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  t.equal(r.json.cniVersion, '1.1.0');
  t.equal((await h.run({ CNI_COMMAND: 'VERSION' }, { cniVersion: '0.4.0' })).json.cniVersion, '1.1.0', 'its own latest version whatever the config says, as the reference plugins answer');
  t.equal(h.loaded(), 0, 'the plugin code was never loaded');
});

t.test('each bin/ plugin is the launcher: VERSION answered with no Node, as the skel does, and Node runs everything else when no agent serves it', async (t) => {
  const bin = new URL('../../bin/', import.meta.url).pathname;
  const env = { PATH: process.env.PATH, CNI_COMMAND: 'VERSION', BERTH_AGENT_SOCKET: '' };
  for (const name of ['berth-bridge', 'berth-ipam', 'berth-ovs']) {
    // no node to be found on PATH; the config on stdin is read and ignored
    const alone = spawnSync(`${bin}${name}`, [], { env: { ...env, PATH: '/nonexistent' }, input: JSON.stringify({ cniVersion: '0.4.0', name: 'n' }), encoding: 'utf8' });
    t.equal(alone.status, 0, `${name} VERSION with no Node exits 0 (${alone.stderr})`);
    t.equal(alone.stdout.trim(), versionAnswer(), `${name}: the launcher's answer is the skel's`);
    const bad = spawnSync(`${bin}${name}`, [], { env: { PATH: process.env.PATH, CNI_COMMAND: 'NOPE', BERTH_AGENT_SOCKET: '' }, input: '', encoding: 'utf8' });
    t.equal(bad.status, 1, `${name}: any other command goes on to Node`);
    t.equal(JSON.parse(bad.stdout).code, 4, 'which answers with the skel\'s error');
    // as `berth install` places it: a link in the CNI bin dir, the launcher finding its installation through it
    const link = join(t.testdir(), name);
    symlinkSync(`${bin}${name}`, link);
    const linked = spawnSync(link, [], { env: { PATH: process.env.PATH, CNI_COMMAND: 'NOPE', BERTH_AGENT_SOCKET: '' }, input: '', encoding: 'utf8' });
    t.equal(JSON.parse(linked.stdout).code, 4, `${name} run through a link reaches its bundle`);
  }
  const other = join(t.testdir(), 'berth-other');
  symlinkSync(`${bin}berth-ipam`, other);
  const r = spawnSync(other, [], { env: { PATH: process.env.PATH, CNI_COMMAND: 'ADD' }, input: '', encoding: 'utf8' });
  t.equal(r.status, 1, 'run under another name it refuses');
  t.match(JSON.parse(r.stdout).msg, /berth-bridge, berth-ovs or berth-ipam/);
});

t.test('unknown or empty CNI_COMMAND: code 4', async (t) => {
  const h = harness();
  for (const command of ['', 'FROB', 'add']) {
    const r = await h.run({ CNI_COMMAND: command }, conf());
    t.equal(r.code, 1, `exit non-zero for "${command}"`);
    t.match(r.json, { code: 4, msg: /CNI_COMMAND/ });
  }
  t.equal(h.loaded(), 0);
});

t.test('ADD and CHECK need CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME; DEL does without CNI_NETNS', async (t) => {
  const h = harness();
  for (const command of ['ADD', 'CHECK']) {
    for (const missing of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME']) {
      const e: Record<string, string> = env(command);
      delete e[missing];
      const r = await h.run(e, conf('1.0.0', { prevResult: { ips: [] } }));
      t.match(r.json, { code: 4, msg: new RegExp(`${missing} is not set`) }, `${command} without ${missing}`);
    }
  }
  const e: Record<string, string> = env('DEL');
  delete e.CNI_NETNS;
  t.equal((await h.run(e, conf())).code, 0, 'DEL without CNI_NETNS');
  t.equal(h.calls.at(-1)!.netns, '');
  const noId: Record<string, string> = env('DEL');
  delete noId.CNI_CONTAINERID;
  t.match((await h.run(noId, conf())).json, { code: 4, msg: /CNI_CONTAINERID/ }, 'DEL still needs the container id');
  t.match((await h.run(env('ADD', { CNI_NETNS: 'relative/path' }), conf())).json, { code: 4, msg: /absolute path/ });
  t.match((await h.run(env('ADD', { CNI_CONTAINERID: '-bad id' }), conf())).json, { code: 4, msg: /CNI_CONTAINERID/ });
});

t.test('interface names: over 15 bytes, "/", ":" or white space give code 4', async (t) => {
  const h = harness();
  for (const name of ['a23456789012345x', 'eth/0', 'eth:0', 'eth 0', 'eth\t0', '.', '..', 'éééééééé']) {
    t.match((await h.run(env('ADD', { CNI_IFNAME: name }), conf())).json, { code: 4, msg: /CNI_IFNAME/ }, JSON.stringify(name));
  }
  t.equal((await h.run(env('ADD', { CNI_IFNAME: 'a23456789012345' }), conf())).code, 0, '15 bytes is fine');
});

t.test('malformed JSON: 6; bad name: 7; unsupported version: 1', async (t) => {
  const h = harness();
  t.match((await h.run(env('ADD'), '{"cniVersion":')).json, { code: 6 });
  t.match((await h.run(env('ADD'), '[1,2]')).json, { code: 6 });
  t.match((await h.run(env('ADD'), { cniVersion: '1.0.0', type: 'stub' })).json, { code: 7, msg: /name/ });
  t.match((await h.run(env('ADD'), conf('1.0.0', { name: '-x' }))).json, { code: 7, msg: /name/ });
  for (const v of ['0.2.0', '2.0.0', '', 1]) {
    const r = await h.run(env('ADD'), conf('1.0.0', { cniVersion: v }));
    t.match(r.json, { code: 1, msg: /incompatible CNI version/ }, `cniVersion ${JSON.stringify(v)}`);
  }
  t.equal(h.loaded(), 0, 'no bad input loaded the plugin');
});

t.test('errors are {cniVersion, code, msg} on stdout in the config version, with a non-zero exit', async (t) => {
  const h = harness();
  const r = await h.run(env('ADD', { CNI_ARGS: 'NOPE=1' }), conf('0.4.0'));
  t.equal(r.code, 1);
  t.same(Object.keys(r.json).sort(), ['cniVersion', 'code', 'msg']);
  t.equal(r.json.cniVersion, '0.4.0');
});

t.test('CHECK before 0.4.0, GC and STATUS before 1.1.0: code 1', async (t) => {
  const h = harness();
  for (const v of ['0.3.0', '0.3.1']) t.match((await h.run(env('CHECK'), conf(v, { prevResult: {} }))).json, { code: 1, msg: /CHECK/ });
  for (const cmd of ['GC', 'STATUS']) {
    for (const v of ['0.4.0', '1.0.0']) t.match((await h.run({ CNI_COMMAND: cmd }, conf(v))).json, { code: 1, msg: new RegExp(cmd) });
    t.equal((await h.run({ CNI_COMMAND: cmd }, conf('1.1.0'))).code, 0, `${cmd} at 1.1.0 needs no attachment variables`);
  }
});

t.test('CNI_ARGS: unknown keys refused unless IgnoreUnknown=1; malformed pairs refused', async (t) => {
  const h = harness();
  t.match((await h.run(env('ADD', { CNI_ARGS: 'FOO=bar' }), conf())).json, { code: 4, msg: /unknown keys FOO/ });
  t.equal((await h.run(env('ADD', { CNI_ARGS: 'IgnoreUnknown=1;FOO=bar;K8S_POD_NAME=x' }), conf())).code, 0);
  t.equal((await h.run(env('ADD', { CNI_ARGS: 'IP=10.0.0.9' }), conf())).code, 0, 'known keys pass');
  t.match((await h.run(env('ADD', { CNI_ARGS: 'IPonly' }), conf())).json, { code: 4, msg: /KEY=VALUE/ });
  t.match((await h.run(env('ADD', { CNI_ARGS: 'IgnoreUnknown=maybe' }), conf())).json, { code: 4 });
});

t.test('results are written in the requested version', async (t) => {
  const h = harness({ ips: [{ address: '10.0.0.5/24', gateway: '10.0.0.1' }, { address: 'fd00::5/64', gateway: 'fd00::1' }] } as any);
  for (const v of SUPPORTED_VERSIONS) {
    const r = await h.run(env('ADD'), conf(v));
    t.equal(r.json.cniVersion, v);
    if (v.startsWith('0.')) t.same(r.json.ips.map((ip: any) => ip.version), ['4', '6'], `${v} carries ips[].version`);
    else t.notOk(r.json.ips.some((ip: any) => 'version' in ip), `${v} has no ips[].version`);
    t.notOk('interfaces' in r.json, 'an IPAM-only result has no interfaces');
  }
  const full = formatResult(
    { interfaces: [{ name: 'eth0', mtu: 9000, sandbox: '/x' }], routes: [{ dst: '0.0.0.0/0', priority: 5 }] },
    '1.0.0',
  );
  t.same(full, { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], routes: [{ dst: '0.0.0.0/0' }] }, '1.1-only fields dropped for 1.0.0');
});

t.test('prevResult of an older version is read into the current shape', async (t) => {
  const h = harness();
  const prev = { cniVersion: '0.3.1', ips: [{ version: '4', address: '10.0.0.5/24', interface: 2 }], interfaces: [{ name: 'eth0' }] };
  t.equal((await h.run(env('CHECK'), conf('0.4.0', { prevResult: prev }))).code, 0);
  t.same(h.calls.at(-1)!.prev, { interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.5/24', interface: 2 }] });
  t.throws(() => parsePrevResult({ ips: [{ version: '4' }] }), { code: CNI_CODES.INVALID_CONFIG });
  t.match((await h.run(env('CHECK'), conf('1.0.0', { prevResult: 'x' }))).json, { code: 7, msg: /prevResult/ });
});

t.test('the error code table is unique', async (t) => {
  const codes = [...Object.values(CNI_CODES), ...Object.values(BERTH_CODES)];
  t.equal(new Set(codes).size, codes.length);
  t.ok(Object.values(BERTH_CODES).every((c) => c >= 100), 'berth codes are 100 and up');
});
