/** `sanbox mirror ...`: the commands, their options and help (the verbs are in mirror-verbs.ts). */
import type { Command } from 'commander';
import { targetOptions, type Run } from './command-kit.js';
import {
  mirrorActivateCommand,
  mirrorAddSecondaryCommand,
  mirrorCreateCommand,
  mirrorDeactivateCommand,
  mirrorDestroyCommand,
  mirrorFractureCommand,
  mirrorPromoteCommand,
  mirrorRemoveSecondaryCommand,
  mirrorResolveCommand,
  mirrorSetCommand,
  mirrorStatusCommand,
  mirrorVerifyCommand,
  type AddSecondaryFlags,
  type MirrorCreateFlags,
  type MirrorSetFlags,
  type MirrorStatusFlags,
} from './mirror-verbs.js';
import { mirrorSyncCommand, mirrorWaitCommand, type SyncWaitFlags } from './mirror-sync.js';
import type { TargetFlags } from './target.js';

export function addMirrorCommands(program: Command, run: Run): void {
  const mirror = program
    .command('mirror')
    .description('remote mirrors: create, add secondaries, fracture, synchronize, promote, verify (run on the primary\'s array unless said otherwise)')
    .addHelpText(
      'after',
      `
Which array: --api URL or --array NAME; otherwise the lab's array that holds the mirror's primary
(promote: its secondary; resolve: the survivor; create: ARRAY:LUN, else the lab's first array).
Sizes and rates: 64K, 64M, 10M/s, 1048576.`,
    );
  const mirrorRef = ['<mirror>', 'mirror name or id'] as const;
  targetOptions(
    mirror
      .command('create')
      .description('create a mirror with LUN as its primary image (on this array); then add-secondary')
      .argument('<lun>', 'LUN id or name, or ARRAY:LUN')
      .option('--name <name>', 'mirror name (default: the LUN name)')
      .option('--region-size <size>', 'region of the write-intent and fracture logs: power of two 4K..64M (default 64K)')
      .option('--sync-rate <rate>', 'bytes/s for synchronizations (default 64M)')
      .option('--write-policy <policy>', 'synchronous (a mirror is synchronous; asynchronous and near-synchronous replication are modes of a consistency group)')
      .option('--activation <policy>', 'automatic or manual: how the mirror leaves ATTENTION')
      .option('--min-images <n>', 'images (primary included) required to stay ACTIVE; -1: none (default)')
      .option('--max-missing <n>', 'unreachable secondaries tolerated; -1: no limit (default)')
      .option('--secondary-reads', 'let hosts read the secondaries')
      .option('--sync-priority <p>', 'low, medium (default) or high')
      .option('--protect-resync <on|off>', "snapshot a secondary's last consistent point before a resync rewrites it (default on)")
      .option('--sync-controller <mode>', 'adaptive (default: keep the link queue short for host writes, use the bandwidth they leave, up to --sync-rate) or fixed (send at --sync-rate)'),
  ).action(run((lun: string, opts: MirrorCreateFlags) => mirrorCreateCommand(lun, opts)));
  targetOptions(
    mirror
      .command('add-secondary')
      .description('add a secondary image on another array (full synchronization unless --synchronized)')
      .argument(...mirrorRef)
      .option('--to <array:lun>', 'the secondary image, e.g. bravo:disk0 (required)')
      .option('--synchronized', 'the LUN is identical already: no initial copy')
      .option('--recovery <policy>', 'auto (default): resync when it comes back; manual: wait for "mirror sync"')
      .option('--sync-rate <rate>', "bytes/s for this image (default: the mirror's)"),
  ).action(run((ref: string, opts: AddSecondaryFlags) => mirrorAddSecondaryCommand(ref, opts)));
  targetOptions(
    mirror
      .command('remove-secondary')
      .description('remove a secondary image (graceful needs it reachable; --force always)')
      .argument(...mirrorRef)
      .argument('<image>', 'image id (bravo:0) or array name')
      .option('-f, --force', 'remove even when unreachable'),
  ).action(run((ref: string, image: string, opts: TargetFlags & { force?: boolean }) => mirrorRemoveSecondaryCommand(ref, image, opts)));
  targetOptions(
    mirror
      .command('promote')
      .description("make a secondary the primary (runs on the secondary's array)")
      .argument(...mirrorRef)
      .option('-f, --force', 'promote without asking the old primary to step down (it is gone), and even an image that is not a point in time, as it is; if the old primary is alive behind a cut link: split brain')
      .option('--from-snapshot', 'roll the image back to its resync-protection snapshot (its last consistent point) first, then promote'),
  ).action(run((ref: string, opts: TargetFlags & { force?: boolean; fromSnapshot?: boolean }) => mirrorPromoteCommand(ref, opts)));
  targetOptions(
    mirror
      .command('sync')
      .alias('synchronize')
      .description('synchronize fractured or unsynchronized secondaries (all, or one) from the fracture log')
      .argument(...mirrorRef)
      .argument('[image]', 'image id (bravo:0) or array name (default: every one that needs it)')
      .option('-f, --force', 'also on an INACTIVE mirror (CONSISTENT images)')
      .option('--checksum', "compare checksums with the secondary and send only the pieces that differ (default: the mirror's resyncChecksums setting)")
      .option('--full', 'every allocated region, not only the fracture log (with --checksum: check and repair an image, sending what differs)')
      .option('--wait', 'wait until the secondaries are in sync, with progress on stderr (exit 1 if a synchronization stops)')
      .option('-q, --quiet', 'with --wait: no progress on stderr'),
  ).action(run((ref: string, image: string | undefined, opts: SyncWaitFlags & { force?: boolean; checksum?: boolean; full?: boolean }) => mirrorSyncCommand(ref, image, opts)));
  targetOptions(
    mirror
      .command('wait')
      .description('wait until the secondaries (all, or one) are in sync: a synchronization or a resync under way, e.g. after a link came back; progress on stderr (exit 1 if one stops)')
      .argument(...mirrorRef)
      .argument('[image]', 'image id (bravo:0) or array name (default: every secondary)')
      .option('-q, --quiet', 'no progress on stderr'),
  ).action(run((ref: string, image: string | undefined, opts: SyncWaitFlags) => mirrorWaitCommand(ref, image, opts)));
  targetOptions(
    mirror
      .command('fracture')
      .description('stop sending writes to secondaries (all, or one); they are tracked in the fracture log')
      .argument(...mirrorRef)
      .argument('[image]', 'image id (bravo:0) or array name (default: every secondary)'),
  ).action(run((ref: string, image: string | undefined, opts: TargetFlags) => mirrorFractureCommand(ref, image, opts)));
  targetOptions(mirror.command('activate').description('INACTIVE -> ACTIVE (or ATTENTION when the minimum conditions fail)').argument(...mirrorRef)).action(
    run((ref: string, opts: TargetFlags) => mirrorActivateCommand(ref, opts)),
  );
  targetOptions(
    mirror
      .command('deactivate')
      .description('ACTIVE -> INACTIVE (refused while an image synchronizes, unless --force)')
      .argument(...mirrorRef)
      .option('-f, --force', 'stop running synchronizations'),
  ).action(run((ref: string, opts: TargetFlags & { force?: boolean }) => mirrorDeactivateCommand(ref, opts)));
  targetOptions(mirror.command('destroy').description('destroy an INACTIVE mirror without secondaries (the LUNs stay)').argument(...mirrorRef)).action(
    run((ref: string, opts: TargetFlags) => mirrorDestroyCommand(ref, opts)),
  );
  targetOptions(
    mirror
      .command('set')
      .description('change mirror attributes, or one image\'s recovery policy / sync rate')
      .argument(...mirrorRef)
      .option('--name <name>', 'rename the mirror')
      .option('--sync-rate <rate>', 'bytes/s for synchronizations')
      .option('--sync-priority <p>', 'low, medium or high')
      .option('--min-images <n>', 'images required to stay ACTIVE; -1: none')
      .option('--max-missing <n>', 'unreachable secondaries tolerated; -1: no limit')
      .option('--activation <policy>', 'automatic or manual')
      .option('--secondary-reads <on|off>', 'let hosts read the secondaries')
      .option('--protect-resync <on|off>', "snapshot a secondary's last consistent point before a resync rewrites it")
      .option('--resync-checksums <mode>', 'auto (compare checksums of regions that may differ after an unclean stop), always, or never')
      .option('--sync-controller <mode>', 'adaptive (keep the link queue short for host writes, use the bandwidth they leave, up to --sync-rate) or fixed (send at --sync-rate)')
      .option('--image <image>', 'image id or array name, for --recovery / --image-sync-rate / --image-resync-checksums')
      .option('--recovery <policy>', "the image's recovery policy: auto or manual")
      .option('--image-sync-rate <rate>', "the image's sync rate (default: the mirror's)")
      .option('--image-resync-checksums <mode>', "the image's resyncChecksums: auto, always, never, or default (the mirror's)"),
  ).action(run((ref: string, opts: MirrorSetFlags) => mirrorSetCommand(ref, opts)));
  targetOptions(
    mirror
      .command('status')
      .description('mirror state, epoch, and per image: role, state, reachability, fracture, fracture log, resync progress, split brain')
      .argument('[mirror]', 'mirror name or id (default: every mirror)')
      .option('-w, --watch', 're-print every second until Ctrl-C')
      .option('--count <n>', 'with --watch: stop after N prints')
      .option('--interval <seconds>', 'with --watch: seconds between prints (default 1)'),
  ).action(run((ref: string | undefined, opts: MirrorStatusFlags) => mirrorStatusCommand(ref, opts)));
  targetOptions(
    mirror
      .command('verify')
      .description('compare the secondary with the primary region by region (exit 1 when they differ, listing the regions)')
      .argument(...mirrorRef)
      .argument('[image]', 'image id or array name (default: the first secondary)'),
  ).action(run((ref: string, image: string | undefined, opts: TargetFlags) => mirrorVerifyCommand(ref, image, opts)));
  targetOptions(
    mirror
      .command('resolve')
      .description('end a split brain: keep the survivor\'s data, the other side resyncs from it')
      .argument(...mirrorRef)
      .option('--survivor <array>', 'the array whose data is kept (required)'),
  ).action(run((ref: string, opts: TargetFlags & { survivor?: string }) => mirrorResolveCommand(ref, opts)));
}
