// A headless Chromium (Debian's, /usr/bin/chromium) driven by puppeteer-core:
// no browser is downloaded. Each launch gets a new empty profile directory,
// talks over a pipe (no debugging port), and is killed and removed at close.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';

export const CHROMIUM = process.env.BERTH_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Ends a test file early (plan 0) when Chromium is missing on a developer
 * machine. Under CI=true it returns false, so the launch fails the test: CI
 * must drive the console in a real browser, not quietly pass without one.
 */
export function skipWithoutChromium(t: { plan: (n: number, why?: string) => void }): boolean {
  if (existsSync(CHROMIUM) || process.env.CI === 'true') return false;
  t.plan(0, 'chromium is not installed (scripts/test-deps.sh installs it)');
  return true;
}

export interface Chromium {
  browser: Browser;
  /** closes the browser, kills it if it does not go, and removes its profile */
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh profile, nothing reaching the network but what a page asks for. */
export async function launchChromium(): Promise<Chromium> {
  const profile = mkdtempSync(join(tmpdir(), 'berth-chromium-'));
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      pipe: true,
      userDataDir: profile,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
      ],
    });
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw new Error(`failed to launch ${CHROMIUM}: ${(err as Error).message}`);
  }
  const child = browser.process();
  return {
    browser,
    async close() {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([browser.close().catch(() => {}), new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
