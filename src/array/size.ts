/** Parsing and printing of byte sizes: `1G`, `256M`, `512K`, `1.5T`, `4096`, `1GiB`, `1 GB`. */

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 };
const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?\s*$/i;

/**
 * Parses a size: a non-negative integer number of bytes, or a number with a binary suffix
 * K/M/G/T/P (optionally followed by `B` or `iB`; `1G` = `1GiB` = `1GB` = 2^30 bytes). Returns
 * undefined when the text is not a size or the result is not a safe integer.
 */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  if (typeof input !== 'string') return undefined;
  const m = SIZE_RE.exec(input);
  if (!m) return undefined;
  const value = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Prints a size compactly and exactly when possible: 1073741824 → `1G`, 1536 → `1.5K`, 1000 → `1000`. */
export function formatSize(bytes: number): string {
  for (const u of ['P', 'T', 'G', 'M', 'K'] as const) {
    const unit = UNITS[u]!;
    if (bytes >= unit) {
      const v = bytes / unit;
      if (Number.isInteger(v)) return `${v}${u}`;
      if (Number.isInteger(v * 10)) return `${v.toFixed(1)}${u}`;
    }
  }
  return String(bytes);
}

/** Human size with two decimals, for tables: `1.00 GiB`. */
export function humanSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(2)} ${units[i]}`;
}
