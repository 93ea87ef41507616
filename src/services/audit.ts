import type { Principal } from '../auth/principal.js';
import type { AuditEntry, AuditQuery } from '../storage/repositories/audit.js';
import type { Repositories, Store } from '../storage/store.js';
import type { Clock } from '../util/clock.js';
import { uuidv7 } from '../util/ids.js';

/** Who did something: a principal's user, the CLI, or the server itself. */
export interface Actor {
  id: string | null;
  name: string;
  address: string | null;
}

export const SYSTEM_ACTOR: Actor = { id: null, name: 'system', address: null };
export const CLI_ACTOR: Actor = { id: null, name: 'cli', address: null };

export function actorOf(principal: Principal, address: string | null): Actor {
  return principal.user ? { id: principal.user.id, name: principal.user.username, address } : { id: null, name: 'anonymous', address };
}

export interface AuditEvent {
  action: string;
  target?: { type: string; id: string | null; name?: string | null };
  /** Never a secret: names, ids, flags. */
  details?: Record<string, unknown>;
}

/**
 * The audit log of admin changes, token creation and revocation, link deletion and failed
 * sign-ins. `record` takes the repositories of the caller's transaction so the entry lands
 * with the change it describes, or not at all.
 */
export class AuditService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async record(actor: Actor, event: AuditEvent, repos: Repositories = this.store): Promise<void> {
    const at = this.clock.now();
    const entry: AuditEntry = {
      id: uuidv7(at),
      at,
      actorId: actor.id,
      actorName: actor.name,
      action: event.action,
      targetType: event.target?.type ?? null,
      targetId: event.target?.id ?? null,
      targetName: event.target?.name ?? null,
      address: actor.address,
      details: event.details ?? {},
    };
    await repos.audit.append(entry);
  }

  list(query: AuditQuery): Promise<AuditEntry[]> {
    return this.store.audit.list(query);
  }
}
