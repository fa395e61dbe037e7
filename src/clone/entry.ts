/** One clone as the manager keeps it: its record and, while it copies, its copy and background copier. */
import type { BackgroundCopier } from './copier.js';
import type { CloneCopy } from './copy.js';
import type { CloneRecord } from './types.js';

export interface CloneEntry {
  rec: CloneRecord;
  copy?: CloneCopy;
  copier?: BackgroundCopier;
  /** Set while `clone delete` (or an undone create) removes it: guards no longer hold for it. */
  deleting?: boolean;
  /** Set between the record saying completed and the leftovers being removed: status still says copying. */
  finishing?: boolean;
}
