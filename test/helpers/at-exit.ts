// Clean-ups for when a test process exits, however it ends: the servers and
// directories the helpers made. One process listener for all of them, so a
// file that starts many servers raises no MaxListenersExceededWarning.

const exitHooks: Array<() => void> = [];

/** Runs fn when the test process exits; each hook is best effort. */
export function atExit(fn: () => void): void {
  if (exitHooks.length === 0) {
    process.once('exit', () => {
      for (const h of exitHooks) {
        try {
          h();
        } catch {
          // best effort at exit
        }
      }
    });
  }
  exitHooks.push(fn);
}
