// What the agent does with one container, decided from facts alone: its
// attachment record, what Docker says of it, what made the agent look, the
// namespaces of the processes involved, its failed ADD's backoff and its stop
// grace. Pure: the agent gathers the facts (agent.ts, ensure) and carries out
// the action.
//
// The rules:
// - A containerd task attaches only a live process of that container, from
//   what Docker said of the container at its creation.
// - Until Docker reports a container running, an attachment whose process
//   still has the recorded namespace is kept (Docker is still starting it),
//   never taken for a stopped container's.
// - A container signalled to stop is out of the load balancers; if it still
//   runs STOP_GRACE_MS later (it handled the signal), it goes back in.
// - An attachment whose process, namespace or network is not the container's
//   now (restarted, relabelled, half added, a DEL due) is detached first.
// - A failed ADD is tried again for the same process only after its backoff:
//   containerd's task event and Docker's start event of one start must not
//   each run it.
import type { AttachIntent } from './labels.js';
import { checkPolicy, PolicyRefusal, type Policy } from './policy.js';
import { LabelError, parseLabels } from './labels.js';
import type { Phase } from './state.js';

/** How long a container signalled to stop stays out of the load balancers if it does not stop. */
export const STOP_GRACE_MS = 60000;

/** What a container's labels ask for, read against the agent's policy. */
export type LabelVerdict =
  /** null: not berth's (no berth.network) */
  | { intent: AttachIntent | null }
  /** a bad label, the wrong network mode, or a label the policy refuses (`refusal`) */
  | { error: string; network?: string; refusal?: { label: string; owner: string; network: string } };

/** What Docker says of a container. */
export interface DockerView {
  name: string;
  labels: LabelVerdict;
  /** whether it runs, and its init process (0 when not); absent for a task: Docker has not reported the start */
  state?: { running: boolean; pid: number };
}

/** What made the agent look: containerd's new task, or Docker (an event, a retry, a reconciliation). */
export type Trigger = { kind: 'task'; pid: number; ofContainer: boolean } | { kind: 'docker' };

/** The container's attachment record, and its process now. */
export interface RecordFacts {
  phase: Phase;
  pid: number;
  nsInode: number;
  network: string;
  /** the namespace inode of the recorded pid now (0: no such process) */
  pidInode: number;
}

/** Why the container is listed as not attached, when it is. */
export interface ProblemFacts {
  error: string;
  /** a failed ADD: the process it was for, and when the next try may run (ms) */
  pid?: number;
  retryAt?: number;
}

export interface Facts {
  now: number;
  trigger: Trigger;
  /** null: Docker does not know the container (for a task: not this engine's) */
  docker: DockerView | null;
  record?: RecordFacts;
  problem?: ProblemFacts;
  /** when it was signalled to stop (ms), while it is out of the load balancers for it */
  stoppingSince?: number;
  /** the namespace inode now of the process the trigger or Docker names (0: no such process) */
  pidInode: number;
  /** the agent's own network namespace: never a container's */
  hostInode: number;
  /** whether the network the labels name is in the CNI config dir, and that dir */
  networkConfigured: boolean;
  cniConfDir: string;
}

/** The container and process to attach. */
export interface Target {
  name: string;
  pid: number;
  intent: AttachIntent;
}

/** What decideAttach needs: the target and, as they are now, its namespace, its backoff and its network. */
export interface AttachFacts {
  now: number;
  target: Target;
  inode: number;
  hostInode: number;
  problem?: ProblemFacts;
  networkConfigured: boolean;
  cniConfDir: string;
}

export type Action =
  /** nothing to do: not its process, not this engine's container, or its process exited (its die event follows) */
  | { kind: 'ignore'; why: 'not its process' | "not this engine's" | 'exited' }
  /** no attachment wanted: detach the record if there is one; `clearProblem`: no longer listed as not attached */
  | { kind: 'detach'; why: 'removed' | 'stopped' | 'unlabelled'; clearProblem: boolean }
  /** list it as not attached, and why; `detach`: a label error, which then goes as detach "unlabelled" */
  | { kind: 'reject'; error: string; network?: string; refusal?: { label: string; owner: string; network: string }; detach: boolean }
  /** attached as it should be */
  | { kind: 'keep' }
  /** attached, and its stop grace is over: back into the load balancers */
  | { kind: 'readmit' }
  /** detach the record (`why`), then attach `target` as decideAttach says */
  | { kind: 'replace'; why: 'restarted' | 'adding' | 'deleting'; target: Target }
  /** its ADD failed for this process: not before `retryAt` */
  | { kind: 'wait-for-backoff'; retryAt: number }
  /** attach this process, whose namespace is `inode` */
  | { kind: 'attach'; target: Target; inode: number };

/** Reads a container's labels and network mode against the policy. */
export function readLabels(labels: Record<string, string>, name: string, networkMode: string, policy: Policy): LabelVerdict {
  let intent: AttachIntent | null = null;
  try {
    intent = parseLabels(labels, name);
    if (intent && networkMode !== 'none') throw new LabelError('berth.network', `the container must run with --network none (it has "${networkMode}")`);
    if (intent) checkPolicy(policy, intent, name);
    return { intent };
  } catch (err) {
    const network = labels['berth.network'];
    return {
      error: (err as Error).message,
      ...(network !== undefined ? { network } : {}),
      ...(err instanceof PolicyRefusal && intent ? { refusal: { label: err.label, owner: intent.owner, network: intent.network } } : {}),
    };
  }
}

/** What to do with the container, given the facts (see the head of this file). */
export function decide(f: Facts): Action {
  if (f.trigger.kind === 'task' && !f.trigger.ofContainer) return { kind: 'ignore', why: 'not its process' };
  if (!f.docker) return f.trigger.kind === 'task' ? { kind: 'ignore', why: "not this engine's" } : { kind: 'detach', why: 'removed', clearProblem: true };
  const run = running(f);
  if (!run) {
    // a failed ADD may be for a container Docker is still starting: its retry finds out
    const backingOff = f.problem?.retryAt !== undefined && f.problem.retryAt > f.now;
    return { kind: 'detach', why: 'stopped', clearProblem: !backingOff };
  }
  const labels = f.docker.labels;
  if ('error' in labels) return { kind: 'reject', error: labels.error, ...(labels.network !== undefined ? { network: labels.network } : {}), ...(labels.refusal ? { refusal: labels.refusal } : {}), detach: true };
  if (!labels.intent) return { kind: 'detach', why: 'unlabelled', clearProblem: false };
  const target: Target = { name: f.docker.name, pid: run.pid, intent: labels.intent };
  const r = f.record;
  if (r) {
    if (r.phase === 'attached' && r.pid === run.pid && run.inode === r.nsInode && r.network === target.intent.network) {
      return f.stoppingSince !== undefined && f.now - f.stoppingSince > STOP_GRACE_MS ? { kind: 'readmit' } : { kind: 'keep' };
    }
    return { kind: 'replace', why: r.phase === 'attached' ? 'restarted' : r.phase, target };
  }
  return decideAttach({ now: f.now, target, inode: run.inode, hostInode: f.hostInode, ...(f.problem ? { problem: f.problem } : {}), networkConfigured: f.networkConfigured, cniConfDir: f.cniConfDir });
}

/** Whether to attach the target now: not within its backoff, on a configured network, a live process out of the host's namespace. */
export function decideAttach(a: AttachFacts): Action {
  const { target, problem } = a;
  if (problem?.retryAt !== undefined && problem.pid === target.pid && a.now < problem.retryAt) return { kind: 'wait-for-backoff', retryAt: problem.retryAt };
  const network = target.intent.network;
  if (!a.networkConfigured) return { kind: 'reject', error: `network "${network}" is not configured in ${a.cniConfDir}`, network, detach: false };
  if (!a.inode) return { kind: 'ignore', why: 'exited' };
  if (a.inode === a.hostInode) return { kind: 'reject', error: `the container's process ${target.pid} is in the host's network namespace`, network, detach: false };
  return { kind: 'attach', target, inode: a.inode };
}

/** The process the container runs as now, if it runs: a task's, Docker's, or the recorded one while Docker is still starting it. */
function running(f: Facts): { pid: number; inode: number } | undefined {
  if (f.trigger.kind === 'task') return { pid: f.trigger.pid, inode: f.pidInode };
  const state = f.docker?.state;
  if (state?.running) return { pid: state.pid, inode: f.pidInode };
  const r = f.record;
  if (r && r.phase !== 'deleting' && r.nsInode !== 0 && r.pidInode === r.nsInode) return { pid: r.pid, inode: r.pidInode };
  return undefined;
}
