/** The error every StorageArray operation fails with: a stable code and a message for people. */
export type ArrayErrorCode =
  | 'invalid-argument'
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
