/**
 * Where the controller keeps node ids and sensor metadata. Synchronous on purpose: the
 * gateway backs it with SQLite through better-sqlite3, which is synchronous, and an ID
 * assignment must read and write without another request interleaving.
 */
export interface ControllerStorage {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
}

/** In-memory storage for tests and simulators. Share one instance to model a restart. */
export class MemoryControllerStorage implements ControllerStorage {
  readonly #entries = new Map<string, string>();

  get(key: string): string | undefined {
    return this.#entries.get(key);
  }

  set(key: string, value: string): void {
    this.#entries.set(key, value);
  }

  keys(): string[] {
    return [...this.#entries.keys()];
  }
}
