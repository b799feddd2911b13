import t from 'tap';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { sha1Hex } from '../../core/sha1.js';

t.test('FIPS 180-4 test vectors', async (t) => {
  t.equal(sha1Hex(''), 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
  t.equal(sha1Hex('abc'), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  t.equal(sha1Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'), '84983e441c3bd26ebaae4aa1f95129e5e54670f1');
});

t.test('agrees with node:crypto at every length around the block boundaries, and on UTF-8 and the Lua scripts', async (t) => {
  const ref = (s: string) => createHash('sha1').update(s, 'utf8').digest('hex');
  let mismatches = 0;
  for (let n = 0; n < 300; n++) {
    const s = 'x'.repeat(n);
    if (sha1Hex(s) !== ref(s)) mismatches++;
  }
  t.equal(mismatches, 0, 'lengths 0..299');
  for (const s of ['é', 'owner\u0000ffff', '日本語テキスト🙂', readFileSync(new URL('../../ipam/lua/lib.lua', import.meta.url), 'utf8')]) {
    t.equal(sha1Hex(s), ref(s), JSON.stringify(s.slice(0, 20)));
  }
});
