// What Docker said of each container when first asked: its name, berth labels
// and network mode. Labels never change while a container exists, so one
// read serves every start; a rename reads them again. A containerd task is
// attached from this, without waiting for Docker to report the start.
import type { ContainerInfo, ContainerMeta, DockerEngine } from './docker.js';

/** Containers whose meta is kept (the oldest go first). */
const KNOWN_MAX = 4096;

export class ContainerMetaCache {
  private readonly known = new Map<string, Promise<ContainerMeta | null>>();

  constructor(private readonly docker: Pick<DockerEngine, 'inspect'>) {}

  /** The container's meta, read from Docker the first time; null when Docker does not know it (not kept). */
  get(id: string): Promise<ContainerMeta | null> {
    let m = this.known.get(id);
    if (m) return m;
    m = this.docker.inspect(id).then((info) => {
      if (!info && this.known.get(id) === m) this.known.delete(id);
      return info && metaOf(info);
    });
    m.catch(() => {
      if (this.known.get(id) === m) this.known.delete(id);
    });
    this.keep(id, m);
    return m;
  }

  /** Keeps what a fresh inspect says. */
  remember(info: ContainerInfo): void {
    this.keep(info.id, Promise.resolve(metaOf(info)));
  }

  /** Drops what is kept of it: it is to be read again (created, renamed) or it is gone. */
  forget(id: string): void {
    this.known.delete(id);
  }

  private keep(id: string, m: Promise<ContainerMeta | null>): void {
    this.known.delete(id);
    this.known.set(id, m);
    if (this.known.size > KNOWN_MAX) this.known.delete(this.known.keys().next().value!);
  }
}

function metaOf(info: ContainerInfo): ContainerMeta {
  return { id: info.id, name: info.name, labels: info.labels, networkMode: info.networkMode };
}
