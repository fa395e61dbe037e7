/** The error every StorageArray operation fails with: a stable code and a message for people. */
export type ArrayErrorCode =
  | 'invalid-argument'
  /** Well formed, but this array cannot carry it out as asked: shrink a LUN, a size its file system cannot hold. */
  | 'refused'
  | 'not-found'
  | 'exists'
  | 'busy'
  | 'read-only'
  | 'metadata-corrupt'
  | 'metadata-mismatch'
  | 'io'
  | 'closed';

export class ArrayError extends Error {
  constructor(
    readonly code: ArrayErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ArrayError';
  }
}
