import { defineConfig } from 'vitest/config';

// Two projects:
// - unit: everything under test/ except interop, files in parallel.
// - interop: real servers and real clients (qemu, libnbd, fio, nbd-client,
//   nbdfuse + loop + ext4). They start processes, bind ports and use loop
//   devices and FUSE, so their files run one at a time, after the unit project
//   (groupOrder), with timeouts sized for real I/O.
// Every invariant is asserted on every change in tests (and in the processes they start).
process.env.SANBOX_PARANOID = '1';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/interop/**', '**/node_modules/**', 'dist/**'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'interop',
          include: ['test/interop/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 60_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
