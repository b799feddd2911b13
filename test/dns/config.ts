// berth dns's flags: defaults, and each bad value refused naming its flag,
// through the CLI as a user meets them.
import t from 'tap';
import { main } from '../../cli/main.js';
import { dnsSettings, DNS_DEFAULTS } from '../../dns/config.js';

async function berth(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
  return { code, stdout, stderr };
}

t.test('defaults and good values', async (t) => {
  t.same(dnsSettings({}), { host: '127.0.0.1', port: 53, zone: 'berth', ttl: 5 });
  t.equal(DNS_DEFAULTS.listen, '127.0.0.1:53');
  t.same(dnsSettings({ listen: '[::1]:5353', zone: 'Svc.Example.', ttl: '0' }), { host: '::1', port: 5353, zone: 'svc.example', ttl: 0 });
  t.same(dnsSettings({ listen: '0.0.0.0:0', ttl: 86400 }), { host: '0.0.0.0', port: 0, zone: 'berth', ttl: 86400 });
});

t.test('bad values name their flag', async (t) => {
  const bad: Array<[Parameters<typeof dnsSettings>[0], RegExp]> = [
    [{ listen: 'localhost:53' }, /^--listen: must be IPV4:PORT or \[IPV6\]:PORT, e\.g\. 127\.0\.0\.1:53 or \[::1\]:5353, got "localhost:53"$/],
    [{ listen: '127.0.0.1' }, /^--listen: /],
    [{ listen: '::1:53' }, /^--listen: /],
    [{ listen: '127.0.0.1:65536' }, /^--listen: /],
    [{ listen: '[127.0.0.1]:53' }, /^--listen: /],
    [{ zone: 'a..b' }, /^--zone: has an empty label/],
    [{ zone: 'bad_-.x' }, /^--zone: label "bad_-"/],
    [{ zone: '.' }, /^--zone: must be a domain name, not the root$/],
    [{ zone: '10.in-addr.arpa' }, /^--zone: must be a forward zone/],
    [{ ttl: '-1' }, /^--ttl: must be whole seconds from 0 to 86400, got "-1"$/],
    [{ ttl: '1.5' }, /^--ttl: /],
    [{ ttl: '86401' }, /^--ttl: /],
    [{ ttl: 'five' }, /^--ttl: /],
  ];
  for (const [flags, message] of bad) t.throws(() => dnsSettings(flags), { code: 'INVALID', message }, JSON.stringify(flags));
});

t.test('berth dns: --help, and bad flags refused on one line before anything starts', async (t) => {
  const help = await berth(['dns', '--help']);
  t.equal(help.code, 0);
  for (const flag of ['--listen', '--zone', '--ttl', '--store']) t.match(help.stdout, flag, `--help lists ${flag}`);
  for (const [args, message] of [
    [['--zone', 'a b'], /^berth: failed to serve DNS: --zone: label "a b" must be/],
    [['--listen', 'nowhere'], /^berth: failed to serve DNS: --listen: must be IPV4:PORT/],
    [['--ttl', 'x'], /^berth: failed to serve DNS: --ttl: must be whole seconds/],
    [['--zone', 'a', '--zone', 'b'], /^berth: --zone may be given only once/],
  ] as const) {
    const r = await berth(['dns', ...args]);
    t.equal(r.code === 1 || r.code === 2, true, `${args.join(' ')}: fails`);
    t.match(r.stderr, message);
    t.match(r.stderr, /^[^\n]*\n$/, 'one line');
  }
  const down = await berth(['dns', '--store', 'redis://127.0.0.1:1/0?timeout=300&connectTimeout=300', '--listen', '127.0.0.1:0']);
  t.equal(down.code, 1, 'a store that does not answer: nothing to answer from');
  t.match(down.stderr, /^berth: failed to serve DNS: failed to read the pools: failed to reach store redis:\/\/127\.0\.0\.1:1\/0[^\n]*ECONNREFUSED[^\n]*\n$/);
});
