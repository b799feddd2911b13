// berth ip import of 10,000 rows (a migration's worth of firewall-approved
// addresses) into a Redis store and into the file store, and berth pool
// export of the result, through the CLI in-process.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli/main.js';
import { formatIp } from '../core/address.js';
import { openStore } from '../ipam/open-store.js';
import { buildPoolConfig } from '../ipam/pool-config.js';
import { startRedis } from '../test/helpers/redis.js';

async function berth(args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  let stdout = '';
  let stderr = '';
  const t0 = process.hrtime.bigint();
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
  return { code, stdout, stderr, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

/** The import/export benchmark; returns printable lines. */
export async function benchMigrate(opts: { quick?: boolean } = {}): Promise<string[]> {
  const rows = opts.quick ? 2000 : 10000;
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-mig-'));
  const redis = await startRedis({ durable: true });
  try {
    const file = join(dir, 'rows.csv');
    const lines = ['ip,owner,note'];
    for (let i = 0; i < rows; i++) lines.push(`${formatIp((0x0a500000 + 10 + i).toString(16).padStart(8, '0'))},app-${i},FW-${i}`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    const out = [`berth ip import of ${rows} rows (CSV: ip,owner,note), then berth pool export, in-process`];
    for (const [name, url] of [['redis (AOF, fsync always)', redis.url], ['file', `file://${dir}/store`]] as const) {
      const s = await openStore(url);
      await s.createPool(buildPoolConfig({ name: 'mig', subnet: '10.80.0.0/16' }));
      await s.close();
      const imp = await berth(['--store', url, 'ip', 'import', 'mig', file, '--json']);
      if (imp.code !== 0) throw new Error(`import into ${name} failed: ${imp.stderr}`);
      const reserved = (JSON.parse(imp.stdout) as { reserved: number }).reserved;
      const exp = await berth(['--store', url, 'pool', 'export', 'mig']);
      if (exp.code !== 0) throw new Error(`export from ${name} failed: ${exp.stderr}`);
      out.push(
        `${name.padEnd(26)} import ${(imp.ms / 1000).toFixed(2)} s (${Math.round(reserved / (imp.ms / 1000))} rows/s, ${reserved} reserved)   export ${exp.ms.toFixed(0)} ms (${exp.stdout.trim().split('\n').length - 1} rows)`,
      );
    }
    return out;
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
