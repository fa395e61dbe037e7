/**
 * Mirror and secondary-image state machines and the mirror database record (issue 5, per
 * 002_7ba041cd47d18dd3.txt). Everything here is pure and synchronous: the mirror driver keeps a
 * MirrorDbRecord per mirror, feeds every administrative operation and every operational
 * observation through `applyOp`, persists the returned record (metadata store, both copies),
 * propagates it to the other members (remote-link `mirror-db`) and publishes the events.
 *
 * Tables (./tables.ts), driven directly by tests:
 * - MIRROR_TRANSITIONS[activationPolicy][MirrorState][MirrorEvent] -> MirrorState
 *   (ACTIVE / INACTIVE / ATTENTION; ATTENTION -> ACTIVE under the automatic policy, -> INACTIVE
 *   under the manual one, once the minimum conditions are met again).
 * - IMAGE_TRANSITIONS[ImageState][ImageEvent] -> { to, mirror: states in which it is legal }
 *   (UNSYNCHRONIZED / SYNCHRONIZING / CONSISTENT / SYNCHRONIZED, exactly [0061]-[0071]).
 * - mirrorTransition / imageTransition throw Illegal*TransitionError; can*Transition test.
 *
 * Record (./db.ts): MirrorDbRecord {format 'sanbox.mirror-db', version 1, mirrorId, generation,
 * state, epoch, regionSize, attributes (name, activationPolicy, minImagesRequired,
 * maxMissingImages, writePolicy, writeBacklogSize, syncPriority, syncRate, allowSecondaryReads, protectResync),
 * images: MirrorImage[] {imageId, array, lun, size, role, state (null for the primary), epoch,
 * reachability, fractured, fractureReason, recoveryPolicy, syncRate, syncProgress}}.
 * - parseMirrorDb(json) validates a record read from disk or the wire.
 * - requirements(db) evaluates minimum images required / maximum missing images (a secondary is
 *   missing when UNREACHABLE; a reachable fractured image is present, being or waiting to be resynced). The mirror is ATTENTION (unless INACTIVE) exactly
 *   when `requirements(db).met` is false.
 * - mayActAsPrimary(db, imageId, epoch): only the record's primary with the record's epoch.
 *   An image must check this before serving host writes as primary; a returning old primary has
 *   a lower epoch and rejoins as a secondary.
 * - compareRecords(a, b): higher epoch wins, then higher generation (member reconciliation).
 *
 * Operations (./ops.ts): applyOp(db | null, op) -> { db | null, events } or throws MirrorOpError
 * {code: exists | not-found | invalid | not-secondary | size-mismatch | state | unreachable |
 * has-secondaries}; the input record is never mutated; each success bumps `generation`.
 * - admin: create (ACTIVE, primary epoch 1), add-secondary (SYNCHRONIZED, or UNSYNCHRONIZED which
 *   starts SYNCHRONIZING at once if ACTIVE; one image per array; not smaller than the primary),
 *   remove-secondary (graceful needs it REACHABLE; forced always), promote (refused for
 *   SYNCHRONIZING/UNSYNCHRONIZED unless force; new epoch = max + 1; the old primary becomes a
 *   secondary: SYNCHRONIZED after a clean promote of a SYNCHRONIZED image, else UNSYNCHRONIZED and
 *   fractured ('promote'), and the other secondaries UNSYNCHRONIZED: the driver resyncs them from
 *   the bitmaps), synchronize (ACTIVE: ends a fracture, UNSYNCHRONIZED -> SYNCHRONIZING,
 *   CONSISTENT -> SYNCHRONIZING; INACTIVE: only force on a CONSISTENT image), fracture,
 *   activate (INACTIVE -> ACTIVE, or ATTENTION when the minimum conditions fail; starts pending
 *   syncs), deactivate (refused while an image is SYNCHRONIZING unless force, which fails the
 *   syncs), destroy (INACTIVE and no secondaries; returns db null), change-attributes (mirror
 *   attributes, an image's recoveryPolicy / syncRate; region size is fixed).
 * - operational: image-unreachable (fractures it, reason 'link', or 'freeze' for a member of an
 *   armed consistency group frozen with another; a running sync fails, progress
 *   kept), image-reachable (re-evaluates the mirror rule first; then, for a 'link' or 'freeze' fracture,
 *   recovery policy auto + ACTIVE resumes the sync, else an 'awaiting-operator' event; a former
 *   primary (fracture 'promote') always waits: the driver checks for split brain, then calls
 *   synchronize; an ATTENTION -> ACTIVE move also resumes every auto 'link' fracture), primary-write (ACTIVE only, as the source's table says; SYNCHRONIZED -> CONSISTENT), quiesced
 *   (CONSISTENT -> SYNCHRONIZED), sync-progress, sync-done, sync-failed, updates-lost, history-lost.
 */
export * from './tables.js';
export * from './db.js';
export * from './ops.js';
export * from './invariants.js';
export * from './heartbeat.js';
