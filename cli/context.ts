// What every command handler shares: the process's streams and environment
// (injected, so main() runs in-process under test), who is acting, where the
// exit code goes, and the one way a store operation opens, fails and closes.
import type { Argv } from 'yargs';
import type { Store } from '../ipam/model.js';
import { openStore } from '../ipam/open-store.js';
import { resolveStoreUrl } from '../ipam/store-url.js';
import type { Sink } from './output.js';
import { causeOf, oneLine, quote } from '../core/errors.js';

export { causeOf, quote };

export interface CliIo {
  stdout: Sink;
  stderr: Sink;
  env: NodeJS.ProcessEnv;
}

export interface CliContext {
  io: CliIo;
  /** recorded in the pool history: cli:<user>@<host> */
  actor: string;
  exitCode: number;
}

/** The options every command takes. */
export interface GlobalArgs {
  store?: string | undefined;
  json?: boolean | undefined;
}

/** The arguments a command builder declares, as its handler receives them. */
export type ArgsOf<B> = B extends (y: Argv<GlobalArgs>) => Argv<infer U> ? U : never;

/** Exit code of a failed operation; yargs usage errors exit with USAGE_EXIT. */
export const FAILURE_EXIT = 1;
export const USAGE_EXIT = 2;

/** The context main() hands to yargs as parse context; it arrives merged into argv. */
export function contextOf(argv: object): CliContext {
  const ctx = (argv as { ctx?: CliContext }).ctx;
  // Only main() registers the commands, and it always passes a context.
  if (!ctx) throw new Error('berth command run without a CLI context');
  return ctx;
}

/** Prints one error line and marks the run failed. */
export function reportFailure(ctx: CliContext, message: string, code = FAILURE_EXIT): void {
  ctx.io.stderr.write(`berth: ${oneLine(message)}\n`);
  ctx.exitCode = code;
}


/**
 * Runs one operation: `what` completes "failed to <what>: <cause>". The store
 * is opened only when the operation asks for it, so bad input is reported
 * without touching the store, and it is always closed before returning.
 */
export async function operate(
  argv: GlobalArgs & object,
  what: string,
  fn: (open: () => Promise<Store>, ctx: CliContext) => Promise<void>,
): Promise<void> {
  const ctx = contextOf(argv);
  let store: Store | undefined;
  const open = async (): Promise<Store> => {
    store ??= await openStore(resolveStoreUrl(argv.store, ctx.io.env), { warn: (m) => ctx.io.stderr.write(`berth: warning: ${oneLine(m)}\n`) });
    return store;
  };
  try {
    await fn(open, ctx);
  } catch (err) {
    reportFailure(ctx, `failed to ${what}: ${causeOf(err)}`);
  } finally {
    if (store) {
      try {
        await store.close();
      } catch (err) {
        // The operation itself may have succeeded; a close failure still means
        // the caller cannot be sure its change is durable.
        if (ctx.exitCode === 0) reportFailure(ctx, `failed to close store ${store.location}: ${causeOf(err)}`);
      }
    }
  }
}

