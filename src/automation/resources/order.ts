/**
 * The order in which a resource group's host resources start and stop (seed 001): a resource
 * starts only once everything it is `after` runs, and stops before those. Pure.
 */
import type { HostResourceSpec } from '../rg/types.js';

/**
 * A topological order by `after`. Stable: among the resources whose dependencies are all placed,
 * the one listed first goes first, so a lab file's order is kept wherever `after` allows it.
 * Throws on a duplicate name, an unknown dependency, a self-dependency or a cycle (named).
 */
export function startOrder(resources: HostResourceSpec[]): string[] {
  checkNames(resources);
  const placed = new Set<string>();
  const order: string[] = [];
  while (order.length < resources.length) {
    const next = resources.find((r) => !placed.has(r.name) && r.after.every((d) => placed.has(d)));
    if (!next) throw new Error(`host resources depend on each other in a cycle (each after the next): ${findCycle(resources, placed).join(' -> ')}`);
    placed.add(next.name);
    order.push(next.name);
  }
  return order;
}

/** Dependents stop before what they depend on. */
export function stopOrder(resources: HostResourceSpec[]): string[] {
  return startOrder(resources).reverse();
}

function checkNames(resources: HostResourceSpec[]): void {
  const names = new Set<string>();
  for (const r of resources) {
    if (names.has(r.name)) throw new Error(`host resource ${r.name} is defined twice`);
    names.add(r.name);
  }
  for (const r of resources) {
    for (const d of r.after) {
      if (d === r.name) throw new Error(`host resource ${r.name} lists itself in after`);
      if (!names.has(d)) throw new Error(`host resource ${r.name} is after ${d}, which is not a resource of its group`);
    }
  }
}

/**
 * A cycle among the resources not yet placed (every one of them has an unplaced dependency, so
 * following those must come back to a resource already on the path), as a closed path a -> b -> a.
 */
function findCycle(resources: HostResourceSpec[], placed: Set<string>): string[] {
  const byName = new Map(resources.map((r) => [r.name, r]));
  const path: string[] = [];
  let at = resources.find((r) => !placed.has(r.name))!;
  while (!path.includes(at.name)) {
    path.push(at.name);
    at = byName.get(at.after.find((d) => !placed.has(d))!)!;
  }
  return [...path.slice(path.indexOf(at.name)), at.name];
}
