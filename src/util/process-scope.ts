import { readFileSync, readlinkSync } from 'node:fs';

let cached: string | null | undefined;

/**
 * Where a pid names one process: this boot of this machine and this pid namespace (Linux:
 * `/proc/sys/kernel/random/boot_id` and `/proc/self/ns/pid`). Two processes with the same scope
 * see each other's pids, so one can tell that the other has exited; containers that share a
 * host name (`--network host`) do not share a scope. Undefined where neither can be read.
 */
export function processScope(): string | undefined {
  if (cached === undefined) {
    try {
      cached = `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}/${readlinkSync('/proc/self/ns/pid')}`;
    } catch {
      cached = null;
    }
  }
  return cached ?? undefined;
}

/** Whether a process of this pid runs where this one does (EPERM: it runs, as someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the process that wrote `scope` and `pid` has certainly exited: it ran in this
 * process's scope and its pid is free. False whenever that cannot be known (another machine or
 * namespace, no scope, the pid reused by another process): callers fall back to expiry.
 */
export function processGone(scope: string | null | undefined, pid: number): boolean {
  const here = processScope();
  return here !== undefined && scope === here && pid !== process.pid && Number.isInteger(pid) && pid > 0 && !pidAlive(pid);
}
