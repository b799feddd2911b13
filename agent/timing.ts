// How long containers wait for their address, observed from outside the
// agent's decisions: the agent reports the events it sees and each look at a
// container; this keeps the times, feeds berth_agent_start_to_ip_seconds and
// berth_agent_task_to_ip_seconds, and gives the timing fields of the
// "attached" log line.
//
// The rules:
// - start_to_ip runs from Docker's start event (its own time) to the address
//   being up; an address up before Docker reported the start counts 0, once,
//   when that start event comes.
// - task_to_ip runs from containerd's task create to the address being up.
// - A container that is not to be attached (stopped, removed, unlabelled)
//   drops what was kept for it; a failed ADD keeps it, for its retry.
import type { Histogram } from './metrics.js';

/** The figures of one look at a container (one ensure), for its "attached" line. */
export class Look {
  readonly fields: Record<string, number | string> = {};
  private readonly t0 = Date.now();

  /** `queuedMs`: from the start event reaching the agent to this look */
  constructor(private readonly queuedMs: number | undefined) {}

  /** What the agent knows of the container has been read: Docker's inspect, or for a task the labels read at its creation. */
  read(via: 'containerd' | 'docker'): void {
    this.fields.via = via;
    this.fields[via === 'containerd' ? 'labelsMs' : 'inspectMs'] = Date.now() - this.t0;
    if (this.queuedMs !== undefined) this.fields.queuedMs = this.queuedMs;
  }

  /** Starts a stopwatch for `field` (ms); call what it returns when done. */
  stopwatch(field: 'saveMs' | 'slotMs'): () => void {
    const started = process.hrtime.bigint();
    return () => {
      this.fields[field] = Math.round(Number(process.hrtime.bigint() - started) / 1e6);
    };
  }
}

export class AttachTiming {
  /** Docker's start event time (ns), while its container is not attached */
  private readonly startEvents = new Map<string, bigint>();
  /** containerd's task create time (ns), while its container is not attached */
  private readonly taskEvents = new Map<string, bigint>();
  /** attached before Docker reported the start: its start event finds the address up */
  private readonly upBeforeStart = new Set<string>();
  /** when the latest start event reached the agent (ms) */
  private readonly eventSeen = new Map<string, number>();

  constructor(
    private readonly startToIp: Histogram,
    private readonly taskToIp: Histogram,
  ) {}

  /** Docker reported the container started, at `timeNano`. */
  started(id: string, timeNano: bigint): void {
    if (this.upBeforeStart.delete(id)) this.startToIp.observe({}, 0);
    else {
      this.startEvents.set(id, timeNano);
      this.eventSeen.set(id, Date.now());
    }
  }

  /** containerd made the container's task at `timeNano`. */
  taskMade(id: string, timeNano: bigint): void {
    this.taskEvents.set(id, timeNano);
  }

  /** The agent starts a look at the container. */
  look(id: string): Look {
    const seen = this.eventSeen.get(id);
    return new Look(seen !== undefined ? Date.now() - seen : undefined);
  }

  /** The container is not to be attached: what was kept for it goes. */
  forget(id: string): void {
    this.eventSeen.delete(id);
    this.taskEvents.delete(id);
    this.startEvents.delete(id);
  }

  /** Its attachment is gone: a start event that comes now is a new start's. */
  detached(id: string): void {
    this.upBeforeStart.delete(id);
  }

  /** Its address is up: observes the histograms and returns the timing fields of the "attached" line. */
  attached(id: string, look: Look): Record<string, number | string> {
    const now = Date.now();
    const fields = { ...look.fields };
    const startedAt = this.startEvents.get(id);
    this.startEvents.delete(id);
    if (startedAt !== undefined) this.startToIp.observe({}, Math.max(0, now - Number(startedAt / 1000000n)) / 1000);
    else if (fields.via === 'containerd') this.upBeforeStart.add(id);
    const taskAt = this.taskEvents.get(id);
    this.taskEvents.delete(id);
    if (taskAt !== undefined) {
      fields.sinceTaskMs = Math.max(0, now - Number(taskAt / 1000000n));
      this.taskToIp.observe({}, fields.sinceTaskMs / 1000);
    }
    const seen = this.eventSeen.get(id);
    this.eventSeen.delete(id);
    if (seen) fields.sinceEventMs = now - seen;
    return fields;
  }
}
