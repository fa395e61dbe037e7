/**
 * The clone records of an array: a two-copy metadata document (`clones.A/B` in the array
 * directory, generations and CRCs, so a torn write damages at most the copy being written).
 */
import { MetadataError, MetadataStore } from '../metadata/index.js';
import { CLONE_FORMAT, CloneError, type CloneMetadata, type CloneRecord } from './types.js';

export class CloneRecords {
  private readonly store: MetadataStore<CloneMetadata>;
  records: CloneRecord[] = [];

  constructor(dir: string, noSync: boolean) {
    this.store = new MetadataStore<CloneMetadata>(dir, { basename: 'clones', noSync });
  }

  /** Loads the records; returns the problems found with a copy (the other one was used). */
  async load(): Promise<string[]> {
    let loaded;
    try {
      loaded = await this.store.load();
    } catch (e) {
      if (e instanceof MetadataError) throw new CloneError('io', `clone metadata: ${e.message}`);
      throw e;
    }
    if (loaded.data) {
      const d = loaded.data as Partial<CloneMetadata>;
      if (d.format !== CLONE_FORMAT || !Array.isArray(d.clones)) throw new CloneError('io', `clone metadata format ${JSON.stringify(d.format)} is not ${CLONE_FORMAT}`);
      this.records = d.clones;
    }
    return loaded.problems;
  }

  find(name: string): CloneRecord | undefined {
    return this.records.find((r) => r.name === name);
  }

  /** Persists the records as they are now; on failure `undo` puts the previous state back. */
  async save(undo: () => void): Promise<void> {
    try {
      await this.store.save({ format: CLONE_FORMAT, clones: this.records });
    } catch (e) {
      undo();
      throw new CloneError('io', `cannot save clone metadata: ${(e as Error).message}`);
    }
  }

  /** Adds a record and persists it (removed again when the save fails). */
  add(rec: CloneRecord): Promise<void> {
    this.records.push(rec);
    return this.save(() => (this.records = this.records.filter((r) => r !== rec)));
  }

  /** Removes a record and persists it (put back when the save fails). */
  remove(rec: CloneRecord): Promise<void> {
    const before = this.records;
    this.records = before.filter((r) => r !== rec);
    return this.save(() => (this.records = before));
  }

  /** Changes a record and persists it (changed back when the save fails). */
  update(rec: CloneRecord, change: Partial<CloneRecord>, drop: Array<keyof CloneRecord> = []): Promise<void> {
    const before = { ...rec };
    Object.assign(rec, change);
    for (const k of drop) delete rec[k];
    return this.save(() => {
      for (const k of Object.keys(rec) as Array<keyof CloneRecord>) delete rec[k];
      Object.assign(rec, before);
    });
  }
}
