// How berth's long-running commands (agent, console, dns, sd) learn to stop:
// the first SIGTERM or SIGINT, the signals systemd and a terminal send.

/** Resolves with the name of the first SIGTERM or SIGINT received; the handlers are removed then. */
export function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
    const onSignal = (sig: NodeJS.Signals) => {
      for (const s of signals) process.off(s, onSignal);
      resolve(sig);
    };
    for (const s of signals) process.on(s, onSignal);
  });
}
