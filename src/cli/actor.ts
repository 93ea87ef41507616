import { userInfo } from 'node:os';
import type { Actor } from '../services/audit.js';

/** The audit actor of CLI commands: the operating-system user who ran them. */
export function cliActor(): Actor {
  let name = 'cli';
  try {
    name = `cli:${userInfo().username}`;
  } catch {
    /* no passwd entry */
  }
  return { id: null, name, address: null };
}
