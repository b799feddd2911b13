// Which socket the commands that talk to the agent use: --socket, else
// BERTH_SOCKET, else the socket of the agent's config file (--config, else
// the default file if present), else /run/berth/agent.sock. Each candidate
// socket has its own stand-in agent, which says who it is.
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DEFAULT_SOCKET } from '../../agent/config.js';
import { resolveSocket } from '../../cli/agent-client.js';
import { main } from '../../cli/main.js';
import { shortDir } from '../helpers/agent.js';

async function berth(args: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env });
  return { code, stdout, stderr };
}

/** An agent stand-in on `socket` whose status, attachments and lb views carry `host`. */
async function standIn(socket: string, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.url === '/v1/status') {
      res.end(JSON.stringify({ version: 'x', host, pid: 1, startedAt: '', ready: true, reasons: [], docker: 'connected', store: host, attachments: 0, adding: 0, delQueue: 0, problems: [], lastReconcile: null, rssBytes: 0 }));
    } else if (req.url === '/v1/attachments') {
      res.end(JSON.stringify([{ containerId: host.padEnd(64, '0'), name: host, network: 'n', ip: null, owner: host, phase: 'attached', lb: {}, attempts: 0 }]));
    } else {
      res.end(JSON.stringify({ services: [{ name: host }], backends: [] }));
    }
  });
  await new Promise<void>((resolve) => server.listen(socket, () => resolve()));
  return server;
}

t.test('the socket: --socket, else BERTH_SOCKET, else the config file, else the default', async (t) => {
  const dir = shortDir();
  const sock = { flag: join(dir, 'f.sock'), env: join(dir, 'e.sock'), file: join(dir, 'c.sock') };
  for (const [who, path] of Object.entries(sock)) {
    const s = await standIn(path, who);
    t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  }
  const config = join(dir, 'agent.json');
  writeFileSync(config, JSON.stringify({ store: 'redis://u:pw@127.0.0.1:6379/0', socket: sock.file }));
  const host = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = await berth(['status', '--json', ...args], env);
    t.equal(r.stderr, '', `status ${args.join(' ')}: no error`);
    return (JSON.parse(r.stdout) as { host: string }).host;
  };
  t.equal(await host(['--socket', sock.flag, '--config', config], { BERTH_SOCKET: sock.env }), 'flag', '--socket wins over all');
  t.equal(await host(['--config', config], { BERTH_SOCKET: sock.env }), 'env', 'BERTH_SOCKET wins over the config file');
  t.equal(await host(['--config', config]), 'file', "the config file's socket");
  t.equal(await host(['--config', config], { BERTH_SOCKET: '' }), 'file', 'an empty BERTH_SOCKET counts as unset');
  t.equal(await host(['--config', config], { BERTH_STORE: 'ftp://nonsense' }), 'file', 'BERTH_STORE does not get in the way of reading the file');

  // every command that talks to the agent reads it the same way
  const attachments = await berth(['attachments', '--config', config]);
  t.match(attachments.stdout, /^NAME.*\nfile\s/, 'attachments');
  const lb = await berth(['lb', 'show', '--config', config]);
  t.match(lb.stdout, /^SERVICE.*\nfile\s/, 'lb show');

  // the default file decides only when present, and only below --socket and BERTH_SOCKET
  const absent = join(dir, 'none.json');
  t.equal(resolveSocket({}, {}, absent), DEFAULT_SOCKET, 'no file: the default socket');
  t.equal(resolveSocket({}, {}, config), sock.file, 'the default file, when present');
  t.equal(resolveSocket({}, { BERTH_SOCKET: sock.env }, config), sock.env);
  writeFileSync(join(dir, 'broken.json'), '{');
  t.equal(resolveSocket({ socket: sock.flag }, {}, join(dir, 'broken.json')), sock.flag, 'a default file that does not decide is not read');
  t.equal(resolveSocket({}, { BERTH_SOCKET: sock.env }, join(dir, 'broken.json')), sock.env);
  t.throws(() => resolveSocket({}, {}, join(dir, 'broken.json')), /failed to read the agent config ".*broken\.json": /, 'a broken default file that decides is an error');
});

t.test('a config file given explicitly must be there and valid, and the error names it', async (t) => {
  const dir = t.testdir({ 'bad.json': '{"socket": 5', 'rel.json': JSON.stringify({ socket: 'agent.sock' }), 'pw.json': JSON.stringify({ store: 'redis://u:s3cret@/x' }) });
  for (const cmd of [['status'], ['attachments'], ['lb', 'show']]) {
    const r = await berth([...cmd, '--config', join(dir, 'missing.json')]);
    t.equal(r.code, 1, `${cmd.join(' ')} fails`);
    t.equal(r.stdout, '');
    t.equal(r.stderr, `berth: failed to read the agent config "${join(dir, 'missing.json')}": no such file\n`, `${cmd.join(' ')} names the file`);
  }
  const flagToo = await berth(['status', '--socket', join(dir, 'x.sock'), '--config', join(dir, 'missing.json')]);
  t.match(flagToo.stderr, /^berth: failed to read the agent config ".*missing\.json": no such file\n$/, 'even when --socket would win');
  t.match((await berth(['status', '--config', join(dir, 'bad.json')])).stderr, /^berth: failed to read the agent config ".*bad\.json": .*JSON/);
  t.match((await berth(['status', '--config', join(dir, 'rel.json')])).stderr, /^berth: failed to read the agent config ".*rel\.json": socket must be an absolute path, got "agent\.sock"\n$/);
  const pw = await berth(['status', '--config', join(dir, 'pw.json')]);
  t.match(pw.stderr, /^berth: failed to read the agent config ".*pw\.json": store: /);
  t.notMatch(pw.stderr, /s3cret/, 'a password in the file stays out of the message');
  const noAgent = await berth(['status', '--socket', join(dir, 'none.sock')]);
  t.equal(noAgent.stderr, `berth: failed to get the agent's status: cannot reach the agent at ${join(dir, 'none.sock')}: is the agent running? (berth agent, or systemctl status berth-agent)\n`);
});

t.test('--help documents --config, BERTH_SOCKET and the order', async (t) => {
  for (const cmd of [['status'], ['attachments'], ['lb', 'show']]) {
    const r = await berth([...cmd, '--help']);
    t.equal(r.code, 0);
    const text = r.stdout.replace(/\s+/g, ' '); // wrapped to the terminal's width
    t.match(text, /--socket the agent's API socket \(default: \$BERTH_SOCKET, else the config file's "socket", else \/run\/berth\/agent\.sock\)/, `${cmd.join(' ')} --help`);
    t.match(text, /--config the agent's config file, read for its "socket" \(default \/etc\/berth\/agent\.json, if present\)/);
  }
});
