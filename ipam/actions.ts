// The admin changes to one address (reserve, unreserve, release) as the CLI
// and the console both apply them: the same store calls, and the same
// "failed to <subject>: <cause>" words around the store's errors. The rules
// themselves are the store's (ipam/engine.ts and its Lua scripts).
import type { AddressInfo, Store } from './model.js';

export type AddressAction = 'reserve' | 'unreserve' | 'release';

export const ADDRESS_ACTIONS: readonly AddressAction[] = ['reserve', 'unreserve', 'release'];

export interface ActionRequest {
  /** recorded in the pool history */
  actor: string;
  /** reserve only */
  owner?: string | undefined;
  /** reserve only */
  note?: string | undefined;
}

/** What failed, for "failed to <subject>": the address as the user wrote it. */
export function actionSubject(action: AddressAction, ip: string, pool: string): string {
  return `${action} address ${JSON.stringify(ip)} in pool ${JSON.stringify(pool)}`;
}

/** Applies an action to an address (hex); resolves with the address as it is afterwards. */
export async function applyAction(store: Store, action: AddressAction, pool: string, hex: string, req: ActionRequest): Promise<AddressInfo> {
  switch (action) {
    case 'reserve': {
      const r: { owner?: string; note?: string; actor: string } = { actor: req.actor };
      if (req.owner !== undefined) r.owner = req.owner;
      if (req.note !== undefined) r.note = req.note;
      return store.reserve(pool, hex, r);
    }
    case 'unreserve':
      return store.unreserve(pool, hex, { actor: req.actor });
    case 'release':
      await store.release(pool, { ip: hex, actor: req.actor });
      // Read back what the release left (a hold's owner and end) rather than guess it.
      return store.getAddress(pool, hex);
  }
}
