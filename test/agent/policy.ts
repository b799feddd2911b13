// The label policy as data: what it accepts in the config, and what it lets
// a container claim on each network.
import t from 'tap';
import { checkPolicy, ownerMatches, parsePolicy, PolicyRefusal } from '../../agent/policy.js';

const intent = (network: string, owner: string, lb: Record<string, number> = {}) => ({ network, owner, lb });

t.test('owner patterns: "*" any run, "{name}" the container name, nothing else special', async (t) => {
  t.ok(ownerMatches('web-*', 'web-7', 'x'));
  t.notOk(ownerMatches('web-*', 'api-7', 'x'));
  t.ok(ownerMatches('team/*', 'team/a/b', 'x'), '"*" crosses "/"');
  t.ok(ownerMatches('{name}', 'shop-1', 'shop-1'));
  t.notOk(ownerMatches('{name}', 'shop-2', 'shop-1'));
  t.ok(ownerMatches('prod.{name}', 'prod.a.b', 'a.b'));
  t.notOk(ownerMatches('a.b', 'aXb', 'x'), '"." is a dot');
  t.notOk(ownerMatches('{name}', 'web', 'w.*'), 'a name is matched as text, not as a pattern');
});

t.test('checkPolicy: the rules of the network, else "*", else anything goes', async (t) => {
  const p = parsePolicy({ shop: { owners: ['shop-*'], services: ['web'] }, '*': { owners: ['{name}'] } });
  t.doesNotThrow(() => checkPolicy(p, intent('shop', 'shop-1', { web: 80 }), 'c1'));
  t.throws(() => checkPolicy(p, intent('shop', 'payments-1'), 'c1'), { constructor: PolicyRefusal, label: 'berth.owner', message: /label berth\.owner: owner "payments-1" is not allowed on network "shop": the agent's policy allows shop-\*/ });
  t.throws(() => checkPolicy(p, intent('shop', 'shop-1', { admin: 8080 }), 'c1'), { label: 'berth.lb.admin', message: /service "admin" is not allowed on network "shop"/ });
  t.doesNotThrow(() => checkPolicy(p, intent('other', 'c2', { any: 1 }), 'c2'), 'the "*" rules: its own name, any service');
  t.throws(() => checkPolicy(p, intent('other', 'shop-1'), 'c2'), { message: /on network "other" \(the "\*" rules\)/ });
  t.doesNotThrow(() => checkPolicy(parsePolicy(undefined), intent('x', 'anyone', { any: 1 }), 'c'), 'no policy: as before');
  t.throws(() => checkPolicy(parsePolicy({ locked: { owners: [], services: [] } }), intent('locked', 'a'), 'a'), { message: /allows none/ });
});

t.test('the config is checked and named', async (t) => {
  t.throws(() => parsePolicy([]), /policy must be an object/);
  t.throws(() => parsePolicy({ 'bad net!': {} }), /policy\.bad net!: not a network name/);
  t.throws(() => parsePolicy({ n: { owners: 'web-*' } }), /policy\.n\.owners must be a list of owner key patterns/);
  t.throws(() => parsePolicy({ n: { owners: ['a;b'] } }), /policy\.n\.owners must be a list/);
  t.throws(() => parsePolicy({ n: { services: ['web 1'] } }), /policy\.n\.services must be a list of service names/);
  t.throws(() => parsePolicy({ n: { ips: [] } }), /policy\.n\.ips: unknown field/);
  t.same([...parsePolicy({ n: { owners: ['x-*'] } })], [['n', { owners: ['x-*'] }]]);
});
